"""How long classifier training waits for its data: the share of step time spent in the loader, with the
batches drawn and augmented in the training process (0 workers) and in worker processes, at 32 px grayscale
and 128 px RGB. The reference is a plain-PyTorch loop over batches made before the clock starts (no wait at
all): its step time over ours is the ratio reported. Run by hand: `python benchmarks/input_pipeline.py`
(resnet10t, batch 64, pad-and-crop + flip as in the default params; CUDA when present; `--shapes 128x3`: one size)."""

from __future__ import annotations

import argparse
import time

import numpy as np
import timm
import torch
import torch.nn.functional as F

from ganaug.classify.loader import AugmentedBatches, batch_loader
from ganaug.classify.normalize import Normalizer
from ganaug.device import autocast, memory_format, pick_device
from ganaug.params import load_params


def timed_steps(model, batches, norm, device, steps: int) -> tuple[float, float]:
    """(seconds a step, seconds a step waiting for the batch) over ``steps`` steps after 3 warm-up steps."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    wait = 0.0
    for step in range(steps + 3):
        if step == 3:
            if device.type == "cuda":
                torch.cuda.synchronize()
            started, wait = time.perf_counter(), 0.0
        asked = time.perf_counter()
        images, _ = next(batches)
        x = norm.to_input(images, device)
        wait += time.perf_counter() - asked
        y = torch.zeros(len(x), dtype=torch.long, device=device)
        with autocast(device):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()  # fit() reads once an epoch; here once a step, so the step's time is its own
    return (time.perf_counter() - started) / steps, wait / steps


def reference_steps(model, images: np.ndarray, norm, device, steps: int, batch: int) -> float:
    """The same steps on tensors made before the clock starts: the time of compute alone."""
    made = [norm.to_input(images[i * batch : (i + 1) * batch], device) for i in range(4)]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for step in range(steps + 3):
        if step == 3:
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        x = made[step % 4]
        y = torch.zeros(len(x), dtype=torch.long, device=device)
        with autocast(device):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--shapes", nargs="+", default=["32x1", "128x3"], help="image side x channels, e.g. 128x3")
    args = parser.parse_args()
    shapes = [tuple(int(v) for v in shape.split("x")) for shape in args.shapes]
    device = pick_device()
    cfg = load_params(overrides={"train": {"augment": {"hflip": True, "crop_padding": 4}}}).train
    print("| images | workers | step (ms) | waiting for data | reference step (ms) | reference / ours |")
    print("| --- | --- | --- | --- | --- | --- |")
    for side, channels in shapes:
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (args.batch * 16, side, side, channels), dtype=np.uint8)
        norm = Normalizer.fit(images[:256])
        torch.manual_seed(0)
        model = timm.create_model("resnet10t", num_classes=10, in_chans=channels)
        model.to(device=device, memory_format=memory_format(device)).train()
        reference = reference_steps(model, images, norm, device, args.steps, args.batch)
        for workers in args.workers:
            order = np.concatenate([rng.permutation(len(images)) for _ in range(4)]).reshape(-1, args.batch)
            loader = batch_loader(AugmentedBatches(images, order, cfg.augment, seed=0), device, workers)
            step, wait = timed_steps(model, iter(loader), norm, device, min(args.steps, len(order) - 3))
            print(
                f"| {side} px, {channels} ch | {workers} | {step * 1e3:.1f} | {wait / step:.1%} "
                f"| {reference * 1e3:.1f} | {reference / step:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
