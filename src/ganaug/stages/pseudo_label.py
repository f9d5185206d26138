"""Stage pseudo_label: data/prepared/unlabelled.npz, labelled by the scorer -> data/synthetic/pseudo/ (a pool in
the GAN pool's format, with source_ids.npy; empty, saying why, when data.unlabelled is null or no planned run uses
the pseudo-label sampler)."""

from ganaug import paths
from ganaug.data.store import load_classes
from ganaug.gan.pool_format import save_empty_pool
from ganaug.stages import main, not_needed, staged_output

NO_UNLABELLED = "data.unlabelled is null: there are no unlabelled images to pseudo-label"


def run() -> None:
    meta = load_classes(paths.PREPARED)
    about = {"kind": "pseudo-label", "classes": meta["classes"]}
    why = not_needed("pseudo_label") or (NO_UNLABELLED if "unlabelled" not in meta else None)
    if why:
        with staged_output(paths.PSEUDO) as out:
            save_empty_pool(out, meta["image_size"], meta["channels"], {**about, "skipped": why})
        print(f"pseudo_label: skipped ({why})")
        return
    # the scorer and torch, loaded only when a run needs the pseudo-labels
    import numpy as np

    from ganaug.data.store import load_split
    from ganaug.device import pick_device
    from ganaug.digests import dvc_md5
    from ganaug.gan.pool_format import save_pool
    from ganaug.metrics.features import load_feature_extractor
    from ganaug.params import load_params
    from ganaug.sampling.pseudo import predict

    unlabelled = load_split(paths.PREPARED / "unlabelled.npz")
    extractor, _ = load_feature_extractor(paths.SCORER)
    labels = predict(unlabelled.images, extractor, pick_device(), load_params().score.batch_size)
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
