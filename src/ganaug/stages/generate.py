"""Stage generate: the best generator -> data/synthetic/pool/ (images, labels, latents, meta),
generate.pool_multiple x the real training set, balanced per class, written batch by batch."""

import math
import shutil

from ganaug import paths
from ganaug.data.prepare import load_classes
from ganaug.device import pick_device
from ganaug.gan.export import load_gan
from ganaug.gan.pool import write_pool
from ganaug.params import load_params
from ganaug.stages import main
from ganaug.tracking import dvc_md5


def run() -> None:
    params = load_params()
    cfg = params.generate
    meta = load_classes(paths.PREPARED)
    n_classes, n_train = len(meta["classes"]), sum(meta["counts"]["train"].values())
    G, _, _ = load_gan(paths.GAN)
    per_class = math.ceil(cfg.pool_multiple * n_train / n_classes)
    tmp = paths.POOL.with_name(paths.POOL.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    pool = write_pool(tmp, G.to(pick_device()), per_class, n_classes, cfg.seed, cfg.truncation, cfg.batch_size,
                      {"generator_md5": dvc_md5(paths.GAN / "generator.safetensors"), "classes": meta["classes"]})
    shutil.rmtree(paths.POOL, ignore_errors=True)
    tmp.rename(paths.POOL)
    print(f"generate: {len(pool)} images ({per_class} per class, {pool.meta['shape']}) -> {paths.POOL}")


if __name__ == "__main__":
    main(run)
