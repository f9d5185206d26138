"""Stage projection (DAPPER, paper 003): real training images -> latents of the GAN (a cGAN's z, a style GAN's W
or W+ with projection.w_plus) -> perturbed variants -> data/synthetic/projection/ (a second pool: same format,
plus source_ids.npy, variant.npy -- 0 the reconstruction, 1.. the variants -- and recon_error.npy per row)."""

import json

from ganaug import paths
from ganaug.data.store import load_classes
from ganaug.gan.pool_format import save_empty_pool
from ganaug.stages import main, message_png, not_needed, staged_output


def skip(why: str, meta: dict) -> None:
    """No projection (no run needs one, or a translation generator): an empty pool, metrics and grid that say why
    (the dapper sampler refuses the pool in one line)."""
    with staged_output(paths.PROJECTION) as out:
        save_empty_pool(out, meta["image_size"], meta["channels"], {"skipped": why, "classes": meta["classes"]})
    message_png(f"no DAPPER projection: {why}", paths.PROJECTION_REPORTS / "grid.png")
    paths.METRICS.mkdir(parents=True, exist_ok=True)
    (paths.METRICS / "projection.json").write_text(
        json.dumps({"projected": 0, "pool_size": 0, "skipped": why}, indent=2) + "\n"
    )
    print(f"projection: skipped ({why})")


def run() -> None:
    meta = load_classes(paths.PREPARED)
    if why := not_needed("projection"):
        return skip(why, meta)
    # the GAN, the scorer and torch, loaded only when a run needs the projection
    from ganaug.data.store import load_split
    from ganaug.device import pick_device
    from ganaug.gan.archs import arch_of
    from ganaug.gan.export import load_gan, provenance
    from ganaug.gan.projected import chosen, report_projection, save_projection
    from ganaug.gan.projection import dapper
    from ganaug.metrics.features import load_feature_extractor
    from ganaug.params import load_params

    cfg = load_params().projection
    classes, train, device = meta["classes"], load_split(paths.PREPARED / "train.npz"), pick_device()
    G, D, config = load_gan(paths.GAN)
    arch = arch_of(config["gan"])
    if arch.latent_space is None:
        return skip(f"gan.arch {arch.name} translates real images and has no latent space to project into", meta)
    extractor = load_feature_extractor(paths.SCORER)[0].to(device)
    images, labels, ids = chosen(train, cfg, len(classes))
    out = dapper(arch, G.to(device), D.to(device).eval(), extractor, images, labels, cfg, len(classes))
    with staged_output(paths.PROJECTION) as folder:
        save_projection(folder, out, labels, ids, cfg, classes, provenance(paths.GAN, config))
    grid, metrics_path = paths.PROJECTION_REPORTS / "grid.png", paths.METRICS / "projection.json"
    metrics = report_projection(out, images, labels, classes, cfg, grid, metrics_path)
    print(
        f"projection: {metrics['projected']} real images projected (mean reconstruction MSE "
        f"{metrics['recon_mse_mean']:.4f}), {metrics['pool_size']} images -> {paths.PROJECTION}"
    )


if __name__ == "__main__":
    main(run)
