"""Decoding a folder of photos the way prepare does: images per second, full decode in one process (what
ganaug did before) against JPEG draft decoding, and draft decoding in one worker process per core.
Run by hand: `python benchmarks/decode_folder.py` (2,000 generated 1024-px JPEGs, shrunk to 32 px)."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ganaug.data.sources import folder


def make_photos(out: Path, n: int, side: int) -> list[Path]:
    """``n`` smooth random RGB photos (blocks blurred by the JPEG encoder), ``side`` px, quality 90."""
    rng = np.random.default_rng(0)
    files = []
    for i in range(n):
        blocks = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        image = Image.fromarray(blocks).resize((side, side), Image.Resampling.BILINEAR)
        files.append(out / f"{i:05d}.jpg")
        image.save(files[-1], quality=90)
    return files


def rate(files: list[Path], size: int, draft: bool, workers: int) -> float:
    jobs = [(f, size, "RGB", "stretch", 255, draft) for f in files]
    start = time.perf_counter()
    results = folder.read_all(jobs, workers=workers)
    elapsed = time.perf_counter() - start
    assert all(err is None for _, _, err in results)
    return len(files) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--side", type=int, default=1024)
    parser.add_argument("--size", type=int, default=32, help="data.image_size")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        files = make_photos(Path(tmp), args.images, args.side)
        print(f"{args.images} JPEGs of {args.side} px written in {time.perf_counter() - started:.0f} s")
        full = rate(files, args.size, draft=False, workers=1)
        draft = rate(files, args.size, draft=True, workers=1)
        parallel = rate(files, args.size, draft=True, workers=cores)
    print(f"to {args.size} px, images per second on {cores} cores:")
    print(f"  full decode, 1 process (before): {full:7.1f}")
    print(f"  draft decode, 1 process:         {draft:7.1f}  ({draft / full:.1f}x)")
    print(f"  draft decode, {cores} processes:       {parallel:7.1f}  ({parallel / full:.1f}x)")


if __name__ == "__main__":
    main()
