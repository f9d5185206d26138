"""Per-image scores of a synthetic pool, computed in batches from the memory-mapped images.

For each pool image: the real-only classifier's confidence on the target (generated-for) label,
its predicted label and prediction entropy, and the discriminator's realism score for the target
label (and, for a translation GAN, its class head's confidence in the label, ``d_confidence``; a
translation pool's ``source_id`` and ``source_label`` are carried along). With CLIP (clip.path): its zero-shot label
over the class prompts, ``clip_label``, and ``clip_margin``, its logit for the image's label minus its best logit for
another class (> 0 exactly when the two agree). The classifier's penultimate features (or, with score.features: clip,
CLIP's image features; float16) and class probabilities go to separate .npy files for the diversity-aware sampler and
soft labels. Memory is bounded by one batch: rows are appended to the .npy files as they are computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ganaug.errors import GanaugError

COLUMNS = ("id", "label", "confidence", "predicted", "entropy", "realism")


@dataclass
class Scores:
    table: pd.DataFrame  # one row per pool image: COLUMNS (+ rl_keep once the RL policy has run)
    features: np.ndarray | None = None  # float16 N x F, memory-mapped, row i = table row i
    probs: np.ndarray | None = None  # float16 N x C

    def __len__(self) -> int:
        return len(self.table)


def read_rows(images: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) as a fresh, writable array. From a memory-mapped .npy they are read with
    plain file reads: pages touched through a memory map stay in this process's resident memory
    (1M 28x28 images = 0.8 GB of RSS by the end of a pass), file reads do not."""
    if isinstance(images, np.memmap) and images.filename and images.flags.c_contiguous and images.offset is not None:
        row = int(np.prod(images.shape[1:])) * images.dtype.itemsize
        stop = min(stop, len(images))
        flat = np.fromfile(
            images.filename,
            dtype=images.dtype,
            count=(stop - start) * row // images.dtype.itemsize,
            offset=images.offset + start * row,
        )
        return flat.reshape((stop - start, *images.shape[1:]))
    return np.array(images[start:stop])


def score_batches(
    images: np.ndarray,
    labels: np.ndarray,
    extractor,
    discriminator,
    device,
    batch_size: int,
    desc: str = "score",
    clip=None,
    clip_features: bool = False,
):
    """Yield (rows dict, features, probs) per batch; ``images`` uint8 N x H x W x C (a memmap is fine). ``clip``
    (a ganaug.clip.Clip with the class prompts set) adds its zero-shot columns; ``clip_features``: the features
    yielded are CLIP's image features instead of the classifier's."""
    import torch  # here, not at the top: samplers and selections read scores without torch

    from ganaug.device import ShrinkOnOutOfMemory
    from ganaug.gan.pixels import from_uint8

    extractor.to(device).eval()
    discriminator.to(device).eval()
    if clip is not None:
        clip.to(device).eval()

    @torch.inference_mode()
    def judge(raw, y):
        feats, logits = extractor.features_and_logits(raw.permute(0, 3, 1, 2))
        # D sees images in [-1, 1], as in training; realism, and the class logits of a D with a class head
        realism, d_logits = discriminator.judge(from_uint8(raw), y)
        return feats, logits.float().softmax(1), realism, d_logits

    fit = ShrinkOnOutOfMemory(desc, "score.batch_size")
    for start in tqdm(range(0, len(images), batch_size), desc=desc, unit="batch"):
        raw = torch.from_numpy(read_rows(images, start, start + batch_size)).to(device)
        y = torch.from_numpy(np.asarray(labels[start : start + batch_size], dtype=np.int64)).to(device)
        pieces = fit.run(lambda a, b: judge(raw[a:b], y[a:b]), len(y))  # noqa: B023
        feats, probs, realism = (torch.cat([p[i] for p in pieces]) for i in range(3))
        d_logits = None if pieces[0][3] is None else torch.cat([p[3] for p in pieces])
        rows = {
            "id": np.arange(start, start + len(y), dtype=np.int64),
            "label": y.cpu().numpy(),
            "confidence": probs.gather(1, y[:, None]).squeeze(1).cpu().numpy(),
            "predicted": probs.argmax(1).cpu().numpy(),
            "entropy": (-(probs * probs.clamp_min(1e-12).log()).sum(1)).cpu().numpy(),
            "realism": realism.float().cpu().numpy(),
        }
        if d_logits is not None:  # the discriminator's own belief that the image shows its label
            rows["d_confidence"] = d_logits.float().softmax(1).gather(1, y[:, None]).squeeze(1).cpu().numpy()
        if clip is not None:  # in clip.batch_size pieces of its own: CLIP's input (e.g. 224 px) is far larger
            clip_feats, clip_logits = clip.features_and_logits(raw.permute(0, 3, 1, 2))
            rows["clip_label"] = clip_logits.argmax(1).cpu().numpy()
            rows["clip_margin"] = margins(clip_logits, y).cpu().numpy()
            if clip_features:
                feats = clip_feats
        yield rows, feats.float().cpu().numpy(), probs.cpu().numpy()


def margins(logits, labels):
    """Each image's logit (a torch tensor, N x classes) for its own label minus its best logit for another class:
    > 0 exactly when the predicted label is its own, and the larger, the surer the model is that it shows its label."""
    own = logits.gather(1, labels[:, None]).squeeze(1)
    return own - logits.scatter(1, labels[:, None], float("-inf")).max(1).values


def score_pool(
    images: np.ndarray,
    labels: np.ndarray,
    extractor,
    discriminator,
    device,
    out_dir: Path,
    name: str,
    batch_size: int,
    columns: dict[str, np.ndarray] | None = None,
    clip=None,
    clip_features: bool = False,
) -> pd.DataFrame:
    """Write ``<name>.parquet``, ``<name>_features.npy`` and ``<name>_probs.npy`` into ``out_dir``;
    ``columns`` (one value per image, e.g. a translation's source) are added to the table as they are. ``clip``
    and ``clip_features``: as score_batches."""
    from ganaug.gan.pool_format import NpyWriter

    out_dir.mkdir(parents=True, exist_ok=True)
    n, num_classes = len(images), extractor.model.get_classifier().out_features
    width = clip.num_features if clip_features else extractor.num_features
    feats_out = NpyWriter(out_dir / f"{name}_features.npy", np.float16, (n, width))
    probs_out = NpyWriter(out_dir / f"{name}_probs.npy", np.float16, (n, num_classes))
    parts = []
    try:
        for rows, feats, probs in score_batches(
            images, labels, extractor, discriminator, device, batch_size, f"score {name}", clip, clip_features
        ):
            parts.append(pd.DataFrame(rows))
            feats_out.write(feats)
            probs_out.write(probs)
    finally:
        feats_out.file.close(), probs_out.file.close()
    empty = [*COLUMNS, *(("clip_label", "clip_margin") if clip is not None else ())]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({c: [] for c in empty})
    table = table.astype({"confidence": "float32", "entropy": "float32", "realism": "float32"})
    if clip is not None:
        table = table.astype({"clip_label": "int64", "clip_margin": "float32"})
    table = table.assign(**(columns or {}))
    table.to_parquet(out_dir / f"{name}.parquet", index=False)
    return table


def load_scores(scores_dir: Path, name: str = "pool", rl_keep: Path | None = None) -> Scores:
    """The score table (+ memory-mapped features/probs); ``rl_keep`` adds the RL policy's column."""
    path = scores_dir / f"{name}.parquet"
    if not path.is_file():
        raise GanaugError(f"{path}: score table not found (run `dvc repro score`)")
    table = pd.read_parquet(path)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise GanaugError(f"{path}: missing score columns {missing} (expected {list(COLUMNS)})")
    features = probs = None
    for attr, suffix in (("features", "features"), ("probs", "probs")):
        p = scores_dir / f"{name}_{suffix}.npy"
        if p.is_file():
            arr = np.load(p, mmap_mode="r")
            if len(arr) != len(table):
                raise GanaugError(f"{p}: {len(arr)} rows, but {path.name} has {len(table)}")
            if attr == "features":
                features = arr
            else:
                probs = arr
    if rl_keep is not None:
        if not rl_keep.is_file():
            raise GanaugError(f"{rl_keep}: RL keep-probabilities not found (run `dvc repro rl_policy`)")
        keep = pd.read_parquet(rl_keep)
        if len(keep) != len(table) or not np.array_equal(keep["id"].to_numpy(), table["id"].to_numpy()):
            raise GanaugError(f"{rl_keep}: ids do not match {path} (re-run `dvc repro rl_policy`)")
        table = table.assign(rl_keep=keep["keep_prob"].to_numpy())
    return Scores(table, features, probs)
