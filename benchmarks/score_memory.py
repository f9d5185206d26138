"""Peak resident memory while scoring a 1,000,000-image pool from its memory-mapped file.
Run by hand: `python benchmarks/score_memory.py` (a fresh process per measurement, so ru_maxrss is
its own). Memory does not depend on the models' size, so timm's tiny `test_resnet` and a narrow D
keep the run short. Target: peak RSS < 2 GB."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(count: int, size: int, out: str) -> None:
    import numpy as np
    import timm
    import torch

    from ganaug.classify.normalize import Normalizer
    from ganaug.gan.networks import Discriminator
    from ganaug.gan.pool_format import NpyWriter
    from ganaug.metrics.features import ClassifierFeatures
    from ganaug.sampling.scores import load_scores, score_pool

    rng = np.random.default_rng(0)
    writer = NpyWriter(Path(out) / "images.npy", np.uint8, (count, size, size, 1))
    for start in range(0, count, 50_000):  # the pool file, written without holding it in memory
        writer.write(rng.integers(0, 256, (min(50_000, count - start), size, size, 1), dtype=np.uint8))
    writer.close()
    images = np.load(Path(out) / "images.npy", mmap_mode="r")
    labels = (np.arange(count) % 10).astype(np.int64)
    torch.manual_seed(0)
    extractor = ClassifierFeatures(
        timm.create_model("test_resnet", num_classes=10, in_chans=1), Normalizer([0.5], [0.25])
    )
    D = Discriminator(10, 1, size, width=8, min_width=8)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    score_pool(images, labels, extractor, D, torch.device("cpu"), Path(out) / "scores", "pool", batch_size=1000)
    elapsed = time.perf_counter() - start
    scores = load_scores(Path(out) / "scores", "pool")
    print(
        json.dumps(
            {
                "count": len(scores),
                "seconds": elapsed,
                "rss_before_mb": before / 1024,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "features_mb": scores.features.nbytes / 2**20,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.count, args.size, args.out)
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", "--count", str(args.count), "--size", str(args.size), "--out", tmp],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"scored {result['count']:,} images at {args.size}x{args.size} in {result['seconds']:.0f} s; peak RSS "
        f"{result['peak_rss_mb']:.0f} MB (after imports + model: {result['rss_before_mb']:.0f} MB; features file "
        f"{result['features_mb']:.0f} MB on disk)"
    )


if __name__ == "__main__":
    main()
