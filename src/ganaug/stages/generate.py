"""Stage generate: the best generator -> data/synthetic/pool/ (images, labels, latents, meta),
generate.pool_multiple x the real training set, balanced per class, written batch by batch."""

import math

from ganaug import paths
from ganaug.data.prepare import load_classes
from ganaug.device import pick_device
from ganaug.gan.export import load_gan
from ganaug.gan.pool import write_pool
from ganaug.params import load_params
from ganaug.stages import main, staged_output
from ganaug.tracking import dvc_md5


def run() -> None:
    params = load_params()
    cfg = params.generate
    meta = load_classes(paths.PREPARED)
    n_classes, n_train = len(meta["classes"]), sum(meta["counts"]["train"].values())
    G, _, _ = load_gan(paths.GAN)
    per_class = math.ceil(cfg.pool_multiple * n_train / n_classes)
    with staged_output(paths.POOL) as out:
        pool = write_pool(out, G.to(pick_device()), per_class, n_classes, cfg.seed, cfg.truncation, cfg.batch_size,
                          {"generator_md5": dvc_md5(paths.GAN / "generator.safetensors"), "classes": meta["classes"]})
    print(f"generate: {len(pool)} images ({per_class} per class, {pool.meta['shape']}) -> {paths.POOL}")


if __name__ == "__main__":
    main(run)
