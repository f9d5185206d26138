"""Selecting top-K per class over a 1,000,000-row score table (cl-sam, cr-sam, combined, random).
Run by hand: `python benchmarks/select_speed.py`. Target: cl-sam under 2 s."""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from ganaug.sampling.samplers import class_quotas, select
from ganaug.sampling.scores import Scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--ratio", type=float, default=5.0)
    parser.add_argument("--real-per-class", type=int, default=100)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = args.rows
    scores = Scores(
        pd.DataFrame(
            {
                "id": np.arange(n),
                "label": rng.integers(0, args.classes, n),
                "confidence": rng.random(n, dtype=np.float32),
                "predicted": rng.integers(0, args.classes, n),
                "entropy": rng.random(n, dtype=np.float32),
                "realism": rng.normal(size=n).astype(np.float32),
            }
        )
    )
    quota = class_quotas(np.full(args.classes, args.real_per_class), args.ratio)
    for name in ("cl-sam", "cr-sam", "random", "combined"):
        t = time.perf_counter()
        ids = select(name, scores, quota, seed=0)
        print(
            f"{name:9s} {len(ids):,} of {n:,} rows ({args.ratio:g}x {args.real_per_class}/class): "
            f"{time.perf_counter() - t:.2f} s"
        )


if __name__ == "__main__":
    main()
