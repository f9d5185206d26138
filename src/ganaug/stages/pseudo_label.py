"""Stage pseudo_label: data/prepared/unlabelled.npz, labelled by the scorer -> data/synthetic/pseudo/ (a pool in
the GAN pool's format, with source_ids.npy; empty, saying why, when data.unlabelled is null)."""

import numpy as np

from ganaug import paths
from ganaug.data.store import load_classes, load_split
from ganaug.device import pick_device
from ganaug.digests import dvc_md5
from ganaug.gan.pool import save_pool
from ganaug.metrics.features import load_feature_extractor
from ganaug.params import load_params
from ganaug.sampling.pseudo import predict
from ganaug.stages import main, staged_output

NO_UNLABELLED = "data.unlabelled is null: there are no unlabelled images to pseudo-label"


def run() -> None:
    params = load_params()
    meta = load_classes(paths.PREPARED)
    about = {"kind": "pseudo-label", "classes": meta["classes"]}
    if "unlabelled" not in meta:
        size, channels = meta["image_size"], meta["channels"]
        with staged_output(paths.PSEUDO) as out:
            save_pool(
                out,
                np.zeros((0, size, size, channels), np.uint8),
                np.zeros(0, np.int64),
                np.zeros((0, 0), np.float32),
                {**about, "skipped": NO_UNLABELLED},
            )
        print(f"pseudo_label: skipped ({NO_UNLABELLED})")
        return
    unlabelled = load_split(paths.PREPARED / "unlabelled.npz")
    extractor, _ = load_feature_extractor(paths.SCORER)
    labels = predict(unlabelled.images, extractor, pick_device(), params.score.batch_size)
    with staged_output(paths.PSEUDO) as out:
        save_pool(
            out,
            unlabelled.images,
            labels,
            np.zeros((len(labels), 0), np.float32),
            {
                **about,
                "unlabelled": meta["unlabelled"]["source"],
                "scorer_md5": dvc_md5(paths.SCORER / "model.safetensors"),
            },
            {"source_ids": unlabelled.ids},
        )
    counts = np.bincount(labels, minlength=len(meta["classes"]))
    print(
        f"pseudo_label: {len(labels)} unlabelled images labelled by the scorer (per class "
        f"{counts.min()}-{counts.max()}) -> {paths.PSEUDO}"
    )


if __name__ == "__main__":
    main(run)
