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
    import numpy as np

    from ganaug.data.splits import stratified_take
    from ganaug.data.store import load_split
    from ganaug.device import pick_device
    from ganaug.digests import dvc_md5
    from ganaug.gan.archs import arch_of
    from ganaug.gan.export import load_gan
    from ganaug.gan.pool_format import save_pool
    from ganaug.gan.projection import dapper
    from ganaug.metrics.features import load_feature_extractor
    from ganaug.params import load_params
    from ganaug.plots import projection_grid

    cfg = load_params().projection
    classes, train, device = meta["classes"], load_split(paths.PREPARED / "train.npz"), pick_device()
    G, D, config = load_gan(paths.GAN)
    arch = arch_of(config["gan"])
    if arch.latent_space is None:
        return skip(f"gan.arch {arch.name} translates real images and has no latent space to project into", meta)
    extractor = load_feature_extractor(paths.SCORER)[0].to(device)
    counts = np.bincount(train.labels, minlength=len(classes))
    take = counts if cfg.per_class == "all" else np.minimum(counts, cfg.per_class)
    idx = stratified_take(train.labels, np.arange(len(train)), take.tolist(), np.random.default_rng(cfg.seed))
    images, labels, ids = train.images[idx], train.labels[idx], train.ids[idx]
    out = dapper(arch, G.to(device), D.to(device).eval(), extractor, images, labels, cfg, len(classes))
    about = {"method": cfg.method, "space": out.space, "variants": cfg.variants, "projected": len(out.latents)}
    rows = {
        "source_ids": ids[out.source],
        "variant": out.variant,
        "recon_error": out.errors[out.source].astype(np.float32),
    }
    with staged_output(paths.PROJECTION) as folder:
        md5 = dvc_md5(paths.GAN / "generator.safetensors")
        save_pool(
            folder,
            out.images,
            labels[out.source],
            out.variant_latents,
            {**about, "classes": classes, "generator_md5": md5},
            rows,
        )
    variants = [np.flatnonzero((out.source == i) & (out.variant > 0)) for i in range(len(images))]
    show = np.concatenate([np.flatnonzero(labels == c)[:1] for c in range(len(classes))])
    projection_grid(
        images[show],
        out.reconstructions[show],
        np.stack([out.images[variants[i]] for i in show]),
        [classes[labels[i]] for i in show],
        paths.PROJECTION_REPORTS / "grid.png",
    )
    errors = out.errors
    metrics = {
        "projected": len(errors),
        "pool_size": len(out.variant_latents),
        "recon_mse_mean": round(float(errors.mean()), 5),
        "recon_mse_median": round(float(np.median(errors)), 5),
        "method": cfg.method,
        "space": out.space,
    }
    if out.fit_r2 is not None:  # how much of the target the linear predictor explains, per class
        metrics["predictor_r2"] = {"mean": round(float(out.fit_r2.mean()), 4), "min": round(float(out.fit_r2.min()), 4)}
    paths.METRICS.mkdir(parents=True, exist_ok=True)
    (paths.METRICS / "projection.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(
        f"projection: {len(errors)} real images projected (mean reconstruction MSE {errors.mean():.4f}), "
        f"{len(out.images)} images -> {paths.PROJECTION}"
    )


if __name__ == "__main__":
    main(run)
