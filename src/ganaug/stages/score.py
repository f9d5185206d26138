"""Stage score: one row per synthetic image (pool and DAPPER projection pool) in data/scores/:
classifier confidence on the target label, predicted label, entropy, discriminator realism;
penultimate features and class probabilities beside it."""

from ganaug import paths
from ganaug.device import pick_device
from ganaug.gan.export import load_gan
from ganaug.gan.pool import open_pool
from ganaug.metrics.features import load_feature_extractor
from ganaug.params import load_params
from ganaug.sampling.scores import score_pool
from ganaug.stages import main, staged_output


def run() -> None:
    params = load_params()
    device = pick_device()
    extractor, _ = load_feature_extractor(paths.SCORER)
    _, discriminator, _ = load_gan(paths.GAN)
    sources = {"pool": open_pool(paths.POOL), "projection": open_pool(paths.PROJECTION)}
    with staged_output(paths.SCORES) as out:
        for name, pool in sources.items():
            table = score_pool(pool.images, pool.labels, extractor, discriminator, device, out, name, params.score.batch_size)
            agree = float((table["predicted"] == table["label"]).mean()) if len(table) else 0.0
            print(f"score: {name}: {len(table)} images, mean confidence {table['confidence'].mean():.3f}, "
                  f"label agreement {agree:.3f}, mean realism {table['realism'].mean():.3f}")


if __name__ == "__main__":
    main(run)
