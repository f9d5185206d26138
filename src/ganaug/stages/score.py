"""Stage score: one row per synthetic image (pool and DAPPER projection pool) in data/scores/:
classifier confidence on the target label, predicted label, entropy, discriminator realism;
penultimate features and class probabilities beside it. reports/metrics/pool.json: each pool's label
agreement (the scorer predicts the image's label) and mean confidence, overall and per class, and
its FID, KID and diversity measured exactly as train_gan measures the GAN's samples (so a sampled, a
translated and a projected pool compare on one scale).

With CLIP (clip.path), every table also gets CLIP's zero-shot label over the class prompts (prompts.yaml) and its
margin (the clip sampler's column); with score.features: clip, the features file and the pools' FID, KID and
diversity are in CLIP's image features instead of the scorer's (pool.json then says ``"features": "clip"``)."""

import json

import numpy as np
import torch

from ganaug import paths
from ganaug.data.store import load_classes, load_split
from ganaug.device import pick_device
from ganaug.errors import GanaugError
from ganaug.gan.export import load_gan
from ganaug.gan.pool_format import open_pool
from ganaug.metrics.features import load_feature_extractor
from ganaug.metrics.quality import QualityEvaluator, balanced_draw
from ganaug.params import load_params
from ganaug.sampling.scores import score_pool
from ganaug.stages import main, staged_output


def carried_columns(pool, pool_dir) -> dict | None:
    """The pool's own per-image columns its score table carries: a translation pool's sources (which real image each
    row was translated from, and its label); the retrieval pool's similarity of each image to its nearest training
    image (the retrieval sampler's column)."""
    if pool.meta.get("kind") == "retrieval":  # an empty (skipped) one has no similarity file
        return {"similarity": np.load(pool_dir / "similarity.npy")} if len(pool.labels) else None
    if pool.meta.get("kind") != "translation":
        return None
    return {"source_id": np.load(pool_dir / "source_ids.npy"), "source_label": np.load(pool_dir / "source_labels.npy")}


def load_scoring_clip(params, classes: list[str], device):
    """The CLIP model of clip.path with the class prompts set, or None when no CLIP is given; score.features: clip
    without one is refused in one line."""
    from ganaug import weights

    if not weights.given(params.clip.path):
        if params.score.features == "clip":
            raise GanaugError(
                f"score.features: clip needs CLIP weights, but clip.path is {params.clip.path} (no CLIP); set "
                "clip.path to a transformers CLIPModel folder, or score.features: scorer"
            )
        return None
    from ganaug.clip import load_clip
    from ganaug.prompts import load_prompts

    return load_clip(params.clip.path, params.clip.batch_size, device).set_prompts(load_prompts(classes))


def pool_quality(evaluator: QualityEvaluator, pool, take: np.ndarray, seed: int) -> dict:
    """FID, KID and diversity of the pool images ``take``, scored exactly like train_gan's samples.
    KID averages over random subsets drawn from torch's global generator: seeded here, so the same
    pool gives the same KID on every run."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        quality = evaluator.evaluate(np.asarray(pool.images[take]), pool.labels[take])
    return {"quality_images": int(len(take)), **{k: round(quality[k], 5) for k in ("fid", "kid", "diversity_ratio")}}


def run() -> None:
    params = load_params()
    device = pick_device()
    classes = load_classes(paths.PREPARED)["classes"]
    clip = load_scoring_clip(params, classes, device)
    clip_features = params.score.features == "clip"
    extractor, _ = load_feature_extractor(paths.SCORER)
    _, discriminator, _ = load_gan(paths.GAN)
    sources = {name: open_pool(folder) for name, folder in paths.POOLS.items()}
    train, val = (load_split(paths.PREPARED / f"{s}.npz") for s in ("train", "val"))
    draws = {
        name: balanced_draw(pool.labels, params.gan.eval_samples, len(classes), params.gan.seed)
        for name, pool in sources.items()
    }
    # KID's subsets must fit in the smallest draw (a small projection pool, or a class with few images)
    smallest = min([params.gan.eval_samples, *(len(d) for d in draws.values() if len(d) >= 2)])
    evaluator = QualityEvaluator(
        clip if clip_features else extractor,
        np.concatenate([train.images, val.images]),
        np.concatenate([train.labels, val.labels]),
        len(classes),
        device,
        fake_count=smallest,
    )
    summary = {}
    with staged_output(paths.SCORES) as out:
        for name, pool in sources.items():
            table = score_pool(
                pool.images,
                pool.labels,
                extractor,
                discriminator,
                device,
                out,
                name,
                params.score.batch_size,
                carried_columns(pool, paths.POOLS[name]),
                clip,
                clip_features,
            )
            if not len(table):  # a translation GAN's projection pool (no latents), no unlabelled images
                print(f"score: {name}: empty, nothing scored")
                continue
            quality = (
                pool_quality(evaluator, pool, draws[name], params.gan.seed) if len(draws[name]) >= 2 else {}
            )  # FID needs 2 images
            summary[name] = {
                **pool_summary(table, classes),
                **quality,
                **({"features": "clip"} if clip_features else {}),
            }
            print(
                f"score: {name}: {len(table)} images, mean confidence {table['confidence'].mean():.3f}, "
                f"label agreement {summary[name]['label_agreement']:.3f}, FID {quality.get('fid', float('nan')):.1f}, "
                f"mean realism {table['realism'].mean():.3f}"
            )

    paths.METRICS.mkdir(parents=True, exist_ok=True)
    (paths.METRICS / "pool.json").write_text(json.dumps(summary, indent=2) + "\n")


def pool_summary(table, classes: list[str]) -> dict:
    """How well a pool's images show their labels, overall and per class (a long tail's weak spot:
    a generator that barely learned a rare class feeds its top-up wrong images)."""
    agree = table["predicted"] == table["label"]
    per_class = (
        table.assign(agree=agree).groupby("label").agg(agreement=("agree", "mean"), confidence=("confidence", "mean"))
    )
    out = {
        "images": int(len(table)),
        "label_agreement": round(float(agree.mean()), 4),
        "mean_confidence": round(float(table["confidence"].mean()), 4),
        "label_agreement_per_class": {classes[c]: round(float(r.agreement), 4) for c, r in per_class.iterrows()},
    }
    if "clip_label" in table:  # CLIP's zero-shot label over the class prompts agrees with the image's label
        out["clip_agreement"] = round(float((table["clip_label"] == table["label"]).mean()), 4)
    if "source_label" in table:  # a translation pool: how well images carried out of each class turn into others
        out["label_agreement_by_source_class"] = {
            classes[c]: round(float(v), 4) for c, v in agree.groupby(table["source_label"]).mean().items()
        }
    return out


if __name__ == "__main__":
    main(run)
