"""A selection on disk: the chosen ids of a pool (and the scores they were chosen by) as parquet,
never a copy of the images. Torch-free: choosing a selection costs no torch import."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ganaug import distributed, paths
from ganaug.sampling.samplers import Sampler
from ganaug.sampling.scores import Scores, load_scores


def load_source_scores(sampler: Sampler) -> Scores:
    """The score table of the pool ``sampler`` chooses from, with the RL policy's keep column if it reads it."""
    return load_scores(paths.SCORES, sampler.source, rl_keep=paths.RL_KEEP if sampler.reads_rl else None)


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
