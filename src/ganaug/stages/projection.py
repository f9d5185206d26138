"""Stage projection (DAPPER, paper 003): real training images -> latents of the GAN (a cGAN's z, a style GAN's W
or W+ with projection.w_plus) -> perturbed variants -> data/synthetic/projection/ (a second pool: same format,
plus source_ids.npy, variant.npy -- 0 the reconstruction, 1.. the variants -- and recon_error.npy per row)."""

import json

from ganaug import paths
from ganaug.data.store import load_classes
from ganaug.gan.pool_format import save_empty_pool
from ganaug.stages import main, message_png, not_needed, staged_output


def predictor_score(target: str, extractor, D):
    """images in [-1, 1], labels -> the score the predictor's direction should raise."""
    from ganaug.gan.projection import to_unit

    if target == "realism":
        return lambda x, y: D(x, y)
    return lambda x, y: extractor.features_and_logits(to_unit(x))[1].gather(1, y[:, None]).squeeze(1)


NO_LATENTS = "gan.arch stargan translates real images and has no latent space to project into"


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
    import torch

    from ganaug.data.splits import stratified_take
    from ganaug.data.store import load_split
    from ganaug.device import pick_device
    from ganaug.digests import dvc_md5
    from ganaug.gan.export import load_gan
    from ganaug.gan.pool_format import save_pool
    from ganaug.gan.projection import latent_directions, latent_space, perturb, predictor_directions, project
    from ganaug.gan.train import generate
    from ganaug.metrics.features import load_feature_extractor
    from ganaug.params import load_params
    from ganaug.plots import projection_grid

    params = load_params()
    cfg = params.projection
    n_classes = len(meta["classes"])
    train = load_split(paths.PREPARED / "train.npz")
    device = pick_device()
    G, D, _ = load_gan(paths.GAN)
    if G.takes == "image":
        return skip(NO_LATENTS, meta)
    G, _ = latent_space(G.to(device), cfg.w_plus, cfg.seed), D.to(device).eval()
    # what a projected latent is: a cGAN's z, a style GAN's w (or W+), a diffusion model's DDIM-inverted noise
    space = ("w+" if G.plus else "w") if hasattr(G, "plus") else ("noise" if hasattr(G, "invert") else "z")
    extractor, _ = load_feature_extractor(paths.SCORER)
    extractor.to(device)

    counts = np.bincount(train.labels, minlength=n_classes)
    take = counts if cfg.per_class == "all" else np.minimum(counts, cfg.per_class)
    idx = stratified_take(train.labels, np.arange(len(train)), take.tolist(), np.random.default_rng(cfg.seed))
    images, labels, ids = train.images[idx], train.labels[idx], train.ids[idx]

    feature_fn = extractor.features if cfg.feature_weight > 0 else None
    z, errors = project(G, images, labels, cfg.steps, cfg.lr, feature_fn, cfg.feature_weight, seed=cfg.seed)
    dirs, fit_r2 = None, None
    if cfg.method == "directions":
        dirs = latent_directions(G, cfg.directions)
    elif cfg.method == "predictor":
        dirs, fit_r2 = predictor_directions(
            G, predictor_score(cfg.predictor_target, extractor, D), n_classes, cfg.predictor_samples, seed=cfg.seed
        )
    z_var, source = perturb(z, cfg.variants, cfg.method, cfg.sigma, dirs, cfg.coefficients, cfg.seed, labels=labels)
    variant = np.tile(np.arange(1, cfg.variants + 1), len(z))
    if cfg.include_reconstruction:
        z_var, source = np.concatenate([z, z_var]), np.concatenate([np.arange(len(z)), source])
        variant = np.concatenate([np.zeros(len(z), np.int64), variant])
    z_t = torch.from_numpy(z_var)
    pool_images = generate(G, z_t, torch.from_numpy(labels[source]))

    with staged_output(paths.PROJECTION) as out:
        save_pool(
            out,
            pool_images,
            labels[source],
            z_var,
            {
                "method": cfg.method,
                "space": space,
                "variants": cfg.variants,
                "projected": len(z),
                "classes": meta["classes"],
                "generator_md5": dvc_md5(paths.GAN / "generator.safetensors"),
            },
            {"source_ids": ids[source], "variant": variant, "recon_error": errors[source].astype(np.float32)},
        )

    recon = generate(G, torch.from_numpy(z), torch.from_numpy(labels))
    per_image = [np.flatnonzero((source == i) & (variant > 0)) for i in range(len(z))]
    show = np.concatenate([np.flatnonzero(labels == c)[:1] for c in range(n_classes)])
    projection_grid(
        images[show],
        recon[show],
        np.stack([pool_images[per_image[i]] for i in show]),
        [meta["classes"][labels[i]] for i in show],
        paths.PROJECTION_REPORTS / "grid.png",
    )
    metrics = {
        "projected": int(len(z)),
        "pool_size": int(len(z_var)),
        "recon_mse_mean": round(float(errors.mean()), 5),
        "recon_mse_median": round(float(np.median(errors)), 5),
        "method": cfg.method,
        "space": space,
    }
    if fit_r2 is not None:  # how much of the target the linear predictor explains, per class
        metrics["predictor_r2"] = {"mean": round(float(fit_r2.mean()), 4), "min": round(float(fit_r2.min()), 4)}
    paths.METRICS.mkdir(parents=True, exist_ok=True)
    (paths.METRICS / "projection.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(
        f"projection: {len(z)} real images projected (mean reconstruction MSE {errors.mean():.4f}), "
        f"{len(z_var)} images -> {paths.PROJECTION}"
    )


if __name__ == "__main__":
    main(run)
