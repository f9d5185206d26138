"""Images/s of ganaug's classifier training loop vs a minimal plain-PyTorch loop, same model,
data and batch size, in the same process. Run by hand: `python benchmarks/train_throughput.py`.

Data: data/prepared/train.npz when the pipeline has run (else random 32x32 images). Our loop is
timed with augmentation off (the same work as the plain loop) and with the default augmentation;
its per-epoch validation runs on 64 images so the comparison is of the training loop itself."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn.functional as F

from ganaug.classify.train import Phase, fit
from ganaug.data.store import Split, load_split
from ganaug.device import pick_device, seed_everything
from ganaug.params import load_params


def plain_loop(images: np.ndarray, labels: np.ndarray, model_name: str, batch_size: int, epochs: int, device) -> float:
    """The reference: uint8 arrays in memory, shuffled batches, SGD, nothing else."""
    model = timm.create_model(model_name, num_classes=int(labels.max()) + 1, in_chans=images.shape[-1]).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    x_all = torch.from_numpy(images).permute(0, 3, 1, 2)
    y_all = torch.from_numpy(labels)
    steps = len(images) // batch_size
    model.train()
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(images))
        for s in range(steps):
            idx = order[s * batch_size : (s + 1) * batch_size]
            x = (x_all[idx].to(device).float() / 255 - 0.5) / 0.5
            loss = F.cross_entropy(model(x), y_all[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return epochs * steps * batch_size / (time.perf_counter() - start)


def ours(train: Split, model_name: str, batch_size: int, epochs: int, device, augment: bool) -> float:
    aug = {} if augment else {"hflip": False, "crop_padding": 0, "rotate_degrees": 0}
    cfg = load_params(
        overrides={"train": {"model": model_name, "batch_size": batch_size, "epochs": epochs, "augment": aug}}
    ).train
    model = timm.create_model(model_name, num_classes=int(train.labels.max()) + 1, in_chans=train.images.shape[-1])
    val = Split(train.images[:64], train.labels[:64], train.ids[:64])
    start = time.perf_counter()
    fit(model, Phase("train", train, cfg), val, int(train.labels.max()) + 1, device)
    return epochs * (len(train) // batch_size) * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet10t")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    path = Path("data/prepared/train.npz")
    if path.is_file():
        train, source = load_split(path), str(path)
    else:
        rng = np.random.default_rng(0)
        n = 1000
        train = Split(
            rng.integers(0, 256, (n, 32, 32, 1), dtype=np.uint8), rng.integers(0, 10, n), np.arange(n).astype(str)
        )
        source = "random 32x32x1"
    device = pick_device()
    seed_everything(0)
    ours(train, args.model, args.batch_size, 1, device, augment=False)  # warm-up
    results = {"plain": [], "ours (no aug)": [], "ours (default aug)": []}
    for _ in range(args.repeats):  # interleaved, so drift in machine speed hits all alike
        results["plain"].append(
            plain_loop(train.images, train.labels, args.model, args.batch_size, args.epochs, device)
        )
        results["ours (no aug)"].append(ours(train, args.model, args.batch_size, args.epochs, device, augment=False))
        results["ours (default aug)"].append(
            ours(train, args.model, args.batch_size, args.epochs, device, augment=True)
        )
    plain = np.median(results["plain"])
    print(
        f"{args.model}, batch {args.batch_size}, {len(train)} images from {source}, {device.type}, "
        f"{torch.get_num_threads()} threads, median of {args.repeats} x {args.epochs} epochs"
    )
    print(f"{'loop':<20} {'img/s':>8} {'vs plain':>9}")
    for name, values in results.items():
        print(f"{name:<20} {np.median(values):8.0f} {np.median(values) / plain:8.2f}x")


if __name__ == "__main__":
    main()
