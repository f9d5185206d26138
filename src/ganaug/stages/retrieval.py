"""Stage retrieval: data/prepared/unlabelled.npz, each image labelled with the class of its nearest training image
(cosine similarity in CLIP's image features when clip.path is given, else in the scorer's) -> data/synthetic/retrieval/
(a pool in the GAN pool's format, with source_ids.npy, similarity.npy and neighbour_ids.npy; empty, saying why, when
data.unlabelled is null or no planned run uses the retrieval sampler)."""

from ganaug import paths
from ganaug.data.store import load_classes
from ganaug.gan.pool_format import save_empty_pool
from ganaug.stages import main, not_needed, staged_output

NO_UNLABELLED = "data.unlabelled is null: there are no unlabelled images to retrieve from"


def run() -> None:
    meta = load_classes(paths.PREPARED)
    about = {"kind": "retrieval", "classes": meta["classes"]}
    why = not_needed("retrieval") or (NO_UNLABELLED if "unlabelled" not in meta else None)
    if why:
        with staged_output(paths.RETRIEVAL) as out:
            save_empty_pool(out, meta["image_size"], meta["channels"], {**about, "skipped": why})
        print(f"retrieval: skipped ({why})")
        return
    # the feature extractor and torch, loaded only when a run needs the retrieved images
    import numpy as np

    from ganaug import weights
    from ganaug.data.store import load_split
    from ganaug.device import pick_device
    from ganaug.digests import dvc_md5
    from ganaug.gan.pool_format import save_pool
    from ganaug.params import load_params
    from ganaug.sampling.retrieval import nearest, scorer_features

    params = load_params()
    device = pick_device()
    train, unlabelled = (load_split(paths.PREPARED / f"{s}.npz") for s in ("train", "unlabelled"))
    if weights.given(params.clip.path):  # the paper retrieves with CLIP
        from ganaug.clip import image_features, load_clip

        clip = load_clip(params.clip.path, params.clip.batch_size, device)
        about.update(features="clip", clip_md5=weights.weights_md5(params.clip.path))

        def embed(images, what):
            return image_features(clip, images, desc=f"retrieval: CLIP features of the {what} images")
    else:
        from ganaug.metrics.features import load_feature_extractor

        extractor, _ = load_feature_extractor(paths.SCORER)
        about.update(features="scorer", scorer_md5=dvc_md5(paths.SCORER / "model.safetensors"))

        def embed(images, what):
            desc = f"retrieval: scorer features of the {what} images"
            return scorer_features(images, extractor, device, params.score.batch_size, desc)

    labels, similarity, neighbour = nearest(
        embed(unlabelled.images, "unlabelled"), embed(train.images, "training"), train.labels
    )
    with staged_output(paths.RETRIEVAL) as out:
        save_pool(
            out,
            unlabelled.images,
            labels,
            np.zeros((len(labels), 0), np.float32),
            {**about, "unlabelled": meta["unlabelled"]["source"]},
            {"source_ids": unlabelled.ids, "similarity": similarity, "neighbour_ids": train.ids[neighbour]},
        )
    counts = np.bincount(labels, minlength=len(meta["classes"]))
    print(
        f"retrieval: {len(labels)} unlabelled images labelled by their nearest training image in {about['features']} "
        f"features (per class {counts.min()}-{counts.max()}, mean similarity {similarity.mean():.3f}) -> "
        f"{paths.RETRIEVAL}"
    )


if __name__ == "__main__":
    main(run)
