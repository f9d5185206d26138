"""Run under torchrun by tests/test_distributed.py (and called directly for the one-process result):
the classifier loop or the GAN loop on scikit-learn's digits; each rank saves what it ended with."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

from ganaug import distributed
from ganaug.data.store import Split
from tests.conftest import TINY, params_with


def digits(n: int) -> Split:
    data = load_digits()
    images = (data.images[:n] * 16).clip(0, 255).astype(np.uint8)[..., None]  # 0..16 -> 0..255, 8 x 8 x 1
    return Split(images, data.target[:n].astype(np.int64), np.array([str(i) for i in range(n)]))


def fit_result(out: Path) -> None:
    """The classifier loop on a network without BatchNorm: DDP's averaged gradient is then exactly
    the one-process gradient of the same global batch, so the weights must agree to rounding."""
    from ganaug.classify.train import Phase, fit

    device = distributed.init(torch.device("cpu"))
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8 * 64, 10)
    )
    cfg = params_with(TINY).train.model_copy(update={"epochs": 2, "batch_size": 32, "lr": 0.05, "schedule": "cosine"})
    data = digits(400)
    train, val = (
        Split(data.images[:320], data.labels[:320], data.ids[:320]),
        Split(data.images[320:], data.labels[320:], data.ids[320:]),
    )
    seen = []  # images this rank's replica trained on
    model.register_forward_hook(lambda module, args, output: seen.append(len(args[0])) if module.training else None)
    history, _ = fit(model, Phase("train", train, cfg), val, 10, device)
    torch.save(model.state_dict(), out / f"fit-rank{distributed.rank()}.pt")
    (out / f"fit-seen-rank{distributed.rank()}.json").write_text(json.dumps(seen))
    if distributed.is_main():
        (out / "fit-history.json").write_text(json.dumps(history))


def gan_result(out: Path) -> None:
    """The GAN loop: every rank draws the same global batches, even though rank 0 alone evaluates
    with random numbers (as KID does); replicas stay identical; rank 0 alone writes a checkpoint."""
    import ganaug.gan.train as gan_train

    drawn = []  # the global batches of real images this rank drew
    plain_drawers = gan_train.batch_drawers

    def recording_drawers(*args, **kwargs):
        draw_real, draw_labels = plain_drawers(*args, **kwargs)

        def draw():
            idx = draw_real()
            drawn.append(idx.tolist())
            return idx

        return draw, draw_labels

    def evaluate(images, labels):
        torch.randperm(1000)  # KID's random subsets use the global generator
        return {"fid": float(len(drawn)), "kid": 0.0, "diversity_ratio": 1.0, "label_agreement": 1.0}

    gan_train.batch_drawers = recording_drawers
    device = distributed.init(torch.device("cpu"))
    data = digits(300)
    cfg = params_with(TINY).gan.model_copy(update={"steps": 6, "ckpt_every": 3, "eval_every": 2, "batch_size": 16})
    gan = gan_train.train_gan(
        data.images, data.labels, 10, cfg, device, out / f"ckpt-rank{distributed.rank()}", evaluate=evaluate
    )
    torch.save({"G": gan.G.state_dict(), "D": gan.D.state_dict()}, out / f"gan-rank{distributed.rank()}.pt")
    (out / f"gan-drawn-rank{distributed.rank()}.json").write_text(json.dumps(drawn))


def batchnorm_result(out: Path) -> None:
    """The classifier loop on a network with BatchNorm: each rank normalises its own half of every batch."""
    from ganaug.classify.train import Phase, fit

    device = distributed.init(torch.device("cpu"))
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 64, 10),
    )
    model.get_classifier = lambda: model[-1]
    cfg = params_with(TINY).train.model_copy(update={"epochs": 2, "batch_size": 32, "lr": 0.05, "schedule": "cosine"})
    data = digits(400)
    train, val = (
        Split(data.images[:320], data.labels[:320], data.ids[:320]),
        Split(data.images[320:], data.labels[320:], data.ids[320:]),
    )
    fit(model, Phase("train", train, cfg), val, 10, device)
    torch.save(model.state_dict(), out / f"bn-rank{distributed.rank()}.pt")


if __name__ == "__main__":
    {"fit": fit_result, "gan": gan_result, "bn": batchnorm_result}[sys.argv[1]](Path(sys.argv[2]))
    distributed.shutdown()
