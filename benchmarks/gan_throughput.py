"""GAN training images/s of ganaug's loop vs a minimal plain-PyTorch loop of the same networks,
batch, n_dis and DiffAugment, in the same process. Run by hand: `python benchmarks/gan_throughput.py`.
Images/s = generator steps x batch size / seconds."""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganaug.gan.diffaugment import diff_augment
from ganaug.gan.networks import Discriminator, Generator
from ganaug.gan.train import train_gan
from ganaug.params import load_params


def plain_loop(real: torch.Tensor, labels: torch.Tensor, cfg, steps: int) -> float:
    G = Generator(10, real.shape[1], real.shape[2], cfg.z_dim, cfg.g_width, cfg.min_width)
    D = Discriminator(10, real.shape[1], real.shape[2], cfg.d_width, cfg.min_width)
    opt_g = torch.optim.Adam(G.parameters(), cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(D.parameters(), cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    b, policy = cfg.batch_size, cfg.diffaugment
    start = time.perf_counter()
    for _ in range(steps):
        for _ in range(cfg.n_dis):
            idx = torch.randint(len(real), (b,))
            y = labels[torch.randint(len(real), (b,))]
            with torch.no_grad():
                fake = G(torch.randn(b, cfg.z_dim), y)
            loss = (
                F.relu(1 - D(diff_augment(real[idx], policy), labels[idx])).mean()
                + F.relu(1 + D(diff_augment(fake, policy), y)).mean()
            )
            opt_d.zero_grad()
            loss.backward()
            opt_d.step()
        y = labels[torch.randint(len(real), (b,))]
        loss = -D(diff_augment(G(torch.randn(b, cfg.z_dim), y), policy), y).mean()
        opt_g.zero_grad()
        loss.backward()
        opt_g.step()
    return steps * b / (time.perf_counter() - start)


def ours(images: np.ndarray, labels: np.ndarray, cfg, steps: int) -> float:
    ckpt = Path(tempfile.mkdtemp())
    run_cfg = cfg.model_copy(update={"steps": steps, "ckpt_every": 10**9, "eval_every": 10**9})
    start = time.perf_counter()
    train_gan(images, labels, 10, run_cfg, torch.device("cpu"), ckpt)  # writes one checkpoint at the end
    elapsed = time.perf_counter() - start
    shutil.rmtree(ckpt)
    return steps * cfg.batch_size / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=1, choices=(1, 3))
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    cfg = load_params().gan
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (1000, args.size, args.size, args.channels), dtype=np.uint8)
    labels = np.arange(1000) % 10
    real = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    torch.manual_seed(0)
    ours(images, labels, cfg, 3)  # warm-up
    results = {"plain": [], "ours": []}
    for _ in range(args.repeats):
        results["plain"].append(plain_loop(real, torch.from_numpy(labels), cfg, args.steps))
        results["ours"].append(ours(images, labels, cfg, args.steps))
    plain = np.median(results["plain"])
    print(
        f"GAN g_width {cfg.g_width}, d_width {cfg.d_width}, min_width {cfg.min_width}, {args.size}px "
        f"x{args.channels}, batch {cfg.batch_size}, n_dis {cfg.n_dis}, "
        f"DiffAugment '{cfg.diffaugment}', EMA {cfg.ema_decay}; cpu, {torch.get_num_threads()} threads; "
        f"median of {args.repeats} x {args.steps} G steps"
    )
    for name, values in results.items():
        v = np.median(values)
        print(f"{name:<8} {v:7.1f} img/s  {v / cfg.batch_size:5.2f} G steps/s  {v / plain:5.2f}x")


if __name__ == "__main__":
    main()
