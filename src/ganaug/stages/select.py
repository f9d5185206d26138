"""Stage select@<sampler>-<ratio>: choose ratio x the real set from the scored pool with one
sampler -> data/selected/<sampler>-<ratio>.parquet (pool ids and their scores; no images).

Usage: python -m ganaug.stages.select <sampler> <ratio>"""

import sys

import numpy as np

from ganaug import paths
from ganaug.data.store import load_classes
from ganaug.errors import GanaugError
from ganaug.sampling.selection import load_source_scores, save_selection, source_of
from ganaug.params import load_params
from ganaug.sampling.samplers import class_quotas, sampler_options, select
from ganaug.stages import main


def run() -> None:
    if len(sys.argv) != 3:
        raise GanaugError("usage: python -m ganaug.stages.select <sampler> <ratio>")
    sampler, ratio = sys.argv[1], sys.argv[2]
    params = load_params()
    meta = load_classes(paths.PREPARED)
    counts = np.array([meta["counts"]["train"][c] for c in meta["classes"]])
    scores = load_source_scores(sampler)
    balance = params.select.balance and params.data.imbalance is not None
    quota = class_quotas(counts, float(ratio), balance)
    ids = select(sampler, scores, quota, params.select.seed, **sampler_options(sampler, params.select))
    rows = save_selection(paths.SELECTED / f"{sampler}-{ratio}.parquet", sampler, source_of(sampler), scores, ids)
    print(f"select: {sampler} x{ratio}: {len(ids)} {source_of(sampler)} images, mean confidence "
          f"{rows['confidence'].mean():.3f}, mean realism {rows['realism'].mean():.3f}")


if __name__ == "__main__":
    main(run)
