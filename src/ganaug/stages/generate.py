"""Stage generate: the best generator -> data/synthetic/pool/ (images, labels, latents, meta), written
batch by batch.

  sampling     (cGAN, the default) generate.pool_multiple x the real training set from noise, balanced per class
  translation  every real training image into every other class (and its own with generate.include_own),
               with source_ids.npy and source_labels.npy: a translation generator (gan.arch: stargan) takes
               the image; the cGAN with generate.translate projects it into its latent space first (the
               DAPPER code: projection.steps, lr, feature_weight) and decodes that latent under each label
  labelled     (gan.arch: style, unconditional) samples labelled by the scorer, generate.pool_multiple x the real
               training set, balanced per class as far as the generator draws every class
"""

import math

from ganaug import paths
from ganaug.data.store import load_classes, load_split
from ganaug.device import pick_device
from ganaug.digests import dvc_md5
from ganaug.errors import GanaugError
from ganaug.gan.archs import ARCHS
from ganaug.gan.export import load_gan
from ganaug.gan.pixels import from_uint8
from ganaug.gan.pool import write_labelled_pool, write_pool, write_translation_pool
from ganaug.params import load_params
from ganaug.stages import main, staged_output


def translation_inputs(G, train, params, device):
    """What G takes for each real training image: the image itself, or (cGAN) its projected latent."""
    import torch

    from ganaug.gan.projection import project
    from ganaug.metrics.features import load_feature_extractor

    if G.takes == "image":
        return from_uint8(train.images), {}
    cfg = params.projection
    extractor, _ = load_feature_extractor(paths.SCORER)
    feature_fn = extractor.to(device).features if cfg.feature_weight > 0 else None
    z, errors = project(
        G, train.images, train.labels, cfg.steps, cfg.lr, feature_fn, cfg.feature_weight, seed=params.generate.seed
    )
    return torch.from_numpy(z), {"projection_mse_mean": round(float(errors.mean()), 5)}


def run() -> None:
    params = load_params()
    cfg = params.generate
    meta = load_classes(paths.PREPARED)
    n_classes, n_train = len(meta["classes"]), sum(meta["counts"]["train"].values())
    G, _, config = load_gan(paths.GAN)
    device = pick_device()
    G.to(device)
    about = {"generator_md5": dvc_md5(paths.GAN / "generator.safetensors"), "classes": meta["classes"]}
    arch = config["gan"].get("arch", "cgan")
    conditional = ARCHS[arch].conditional
    if cfg.translate and not conditional:
        raise GanaugError(f"generate.translate: gan.arch {arch} is unconditional, it cannot decode under another label")
    with staged_output(paths.POOL) as out:
        if not conditional:
            from ganaug.metrics.features import load_feature_extractor
            from ganaug.sampling.pseudo import predict

            extractor, _ = load_feature_extractor(paths.SCORER)
            per_class = math.ceil(cfg.pool_multiple * n_train / n_classes)
            pool = write_labelled_pool(
                out,
                G,
                lambda images: predict(images, extractor, device, cfg.batch_size, progress=False),
                per_class,
                n_classes,
                cfg.seed,
                cfg.truncation,
                cfg.batch_size,
                about,
                max_draws=cfg.max_draws,
            )
            short = f", short: {pool.meta['short']}" if "short" in pool.meta else ""
            how = f"up to {per_class} per class as the scorer labels them, {pool.meta['drawn']} drawn{short}"
        elif G.takes == "image" or cfg.translate:
            train = load_split(paths.PREPARED / "train.npz")
            inputs, more = translation_inputs(G, train, params, device)
            pool = write_translation_pool(
                out,
                G,
                inputs,
                train.labels,
                train.ids,
                n_classes,
                cfg.include_own,
                cfg.batch_size,
                {"arch": config["gan"].get("arch", "cgan"), **about, **more},
            )
            how = f"{len(train)} real images translated into {'every' if cfg.include_own else 'every other'} class"
        else:
            per_class = math.ceil(cfg.pool_multiple * n_train / n_classes)
            pool = write_pool(out, G, per_class, n_classes, cfg.seed, cfg.truncation, cfg.batch_size, about)
            how = f"{per_class} per class"
    print(f"generate: {len(pool)} images ({how}, {pool.meta['shape']}) -> {paths.POOL}")


if __name__ == "__main__":
    main(run)
