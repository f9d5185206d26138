"""Stage generate: the kept generator -> data/synthetic/pool/ (images, labels, latents, meta), written batch by batch,
made the generator's way (its Arch's ``make_pool``, ganaug.gan.pool):

  cgan     generate.pool_multiple x the real training set from noise, balanced per class; with generate.translate,
           every real training image projected into its latent space (the DAPPER code: projection.steps, lr,
           feature_weight) and decoded under every other label (and its own with generate.include_own)
  stargan  every real training image translated into every other class (and its own with generate.include_own),
           with source_ids.npy and source_labels.npy
  style    (unconditional) samples labelled by the scorer, generate.pool_multiple x the real training set, balanced
  ddpm     per class as far as the generator draws every class
  sd       generate.pool_multiple x the real training set, balanced per class, from the class prompts (prompts.yaml):
           img2img from each real training image in turn at gan.strength (with source_ids.npy, source_labels.npy),
           or txt2img (gan.sd_mode)
"""

import functools

from ganaug import paths
from ganaug.data.store import load_classes, load_split
from ganaug.device import pick_device
from ganaug.gan.archs import arch_of
from ganaug.gan.export import load_gan, provenance
from ganaug.gan.interface import Inputs
from ganaug.params import load_params
from ganaug.stages import main, staged_output


def run() -> None:
    from ganaug.metrics.features import load_feature_extractor
    from ganaug.sampling.pseudo import predict

    params = load_params()
    meta = load_classes(paths.PREPARED)
    G, _, config = load_gan(paths.GAN)
    device = pick_device()
    scorer = functools.cache(lambda: load_feature_extractor(paths.SCORER)[0])  # loaded only if the pool needs it
    inputs = Inputs(
        params,
        config["gan"]["arch"],
        meta["classes"],
        load_split(paths.PREPARED / "train.npz"),
        device,
        scorer,
        lambda images: predict(images, scorer(), device, params.generate.batch_size, progress=False),
        {**provenance(paths.GAN, config), "classes": meta["classes"]},
    )
    with staged_output(paths.POOL) as out:
        pool, how = arch_of(config["gan"]).make_pool(G.to(device), out, inputs)
    print(f"generate: {len(pool)} images ({how}, {pool.meta['shape']}) -> {paths.POOL}")


if __name__ == "__main__":
    main(run)
