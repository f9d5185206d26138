"""A selection on disk: the chosen ids of a pool (and the scores they were chosen by) as parquet,
never a copy of the images. Torch-free: choosing a selection costs no torch import."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ganaug import distributed, paths
from ganaug.sampling.samplers import SOURCE
from ganaug.sampling.scores import Scores, load_scores


def source_of(sampler: str) -> str:
    return SOURCE.get(sampler, "pool")


def load_source_scores(sampler: str) -> Scores:
    rl_keep = paths.RL_KEEP if sampler == "rl" else None
    return load_scores(paths.SCORES, source_of(sampler), rl_keep=rl_keep)


def save_selection(path: Path, sampler: str, source: str, scores: Scores, ids: np.ndarray) -> pd.DataFrame:
    """The selection as an index list (with the scores it was chosen by), never a copy of images."""
    rows = scores.table.set_index("id").loc[ids].reset_index()
    rows.insert(1, "source", source)
    rows.insert(2, "sampler", sampler)
    if not distributed.is_main():  # under torchrun every rank chooses the same rows; rank 0 writes them
        return rows
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    rows.to_parquet(tmp, index=False)
    tmp.replace(path)
    return rows
