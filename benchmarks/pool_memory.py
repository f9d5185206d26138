"""Peak resident memory while writing a large synthetic pool, and generation images/s.
Run by hand: `python benchmarks/pool_memory.py --count 1000000` (each measurement runs in a fresh
process so ru_maxrss is its own). Memory does not depend on the generator's size, so a small
generator keeps the 1M-image run short; --width 64 gives the default generator's images/s."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(count: int, size: int, width: int, out: str) -> None:
    import torch

    from ganaug.gan.networks import Generator
    from ganaug.gan.pool import write_pool
    from ganaug.gan.pool_format import open_pool

    torch.manual_seed(0)
    G = Generator(10, 1, size, z_dim=128, width=width, min_width=8)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    write_pool(Path(out), G, per_class=count // 10, num_classes=10, seed=0, truncation=None, batch_size=1000)
    elapsed = time.perf_counter() - start
    pool = open_pool(Path(out))
    checksum = int(pool.images[:: max(1, count // 1000)].sum())  # read back through the memory map
    print(
        json.dumps(
            {
                "count": len(pool),
                "seconds": elapsed,
                "images_per_s": len(pool) / elapsed,
                "rss_before_mb": before / 1024,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "checksum": checksum,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.count, args.size, args.width, args.out)
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "--count",
                str(args.count),
                "--size",
                str(args.size),
                "--width",
                str(args.width),
                "--out",
                tmp,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"pool of {result['count']:,} images at {args.size}x{args.size} (generator width {args.width}): "
        f"{result['images_per_s']:.0f} img/s, {result['seconds']:.0f} s; peak RSS {result['peak_rss_mb']:.0f} MB "
        f"(after imports: {result['rss_before_mb']:.0f} MB)"
    )


if __name__ == "__main__":
    main()
