"""Training and evaluation of a classifier on in-memory uint8 arrays.

The whole dataset stays uint8 in memory; each batch is augmented (albumentations, on uint8) by the
DataLoader's workers (ganaug.classify.loader), moved to the device and converted to normalised float
there. Read top to bottom: fit() is the loop over a phase's epochs, train_one_epoch() one epoch's steps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial

import numpy as np
import timm.optim
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ganaug import distributed
from ganaug.classify.loader import AugmentedBatches, batch_loader, loader_workers
from ganaug.classify.normalize import Normalizer
from ganaug.data.store import Split
from ganaug.device import autocast, memory_format, needs_grad_scaler


def make_scheduler(optimizer, schedule: str, total_steps: int, lr: float):
    if schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps)
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


@torch.inference_mode()
def predict_logits(
    model, images: np.ndarray, norm: Normalizer, device: torch.device, batch_size: int = 512
) -> torch.Tensor:
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        with autocast(device):
            out.append(model(norm.to_input(images[start : start + batch_size], device)).float().cpu())
    return torch.cat(out) if out else torch.empty(0)


def evaluate(
    model, split: Split, norm: Normalizer, device: torch.device, num_classes: int, batch_size: int = 512
) -> dict:
    """Loss, accuracy, per-class accuracy and the confusion matrix (rows: true, cols: predicted)."""
    logits = predict_logits(model, split.images, norm, device, batch_size)
    labels = torch.from_numpy(split.labels)
    pred = logits.argmax(1)
    confusion = torch.bincount(labels * num_classes + pred, minlength=num_classes**2).view(num_classes, num_classes)
    per_class = (confusion.diag().float() / confusion.sum(1).clamp(min=1)).tolist()
    return {
        "loss": F.cross_entropy(logits, labels).item(),
        "accuracy": (pred == labels).float().mean().item(),
        "per_class_accuracy": per_class,
        "confusion": confusion.numpy(),
    }


def batch_loss(logits, y, idx, weights, targets, label_smoothing: float, logit_offset=None) -> torch.Tensor:
    """Cross-entropy; per-image ``weights`` (synthetic images may weigh less) and soft ``targets``
    (rows of class probabilities) apply when given: a weighted mean, so the loss scale stays put.
    ``logit_offset`` (per class) is added to the logits inside the loss only (logit adjustment)."""
    if logit_offset is not None:
        logits = logits + logit_offset
    if weights is None and targets is None:
        return F.cross_entropy(logits, y, label_smoothing=label_smoothing)
    target = y if targets is None else torch.from_numpy(targets[idx]).to(logits.device, torch.float32)
    per_image = F.cross_entropy(logits, target, reduction="none", label_smoothing=label_smoothing)
    w = (
        torch.ones_like(per_image)
        if weights is None
        else torch.from_numpy(weights[idx]).to(logits.device, per_image.dtype)
    )
    return (per_image * w).sum() / w.sum().clamp_min(1e-8)


def epoch_steps(n_train: int, batch_size: int, steps_per_epoch: int | None = None) -> int:
    """Steps per epoch: ``steps_per_epoch``, or one pass dropping the ragged last batch (BatchNorm)."""
    return steps_per_epoch or max(1, n_train // batch_size)


@dataclass(frozen=True, eq=False)
class Phase:
    """One stretch of a run's training: the images and how it trains on them. A run is a list of phases
    (ganaug.classify.run.train_and_report), e.g. real + synthetic, then a fine-tune on the real images alone."""

    name: str  # the per-epoch history's 'phase' column
    data: Split
    cfg: object  # train params: epochs, lr, schedule, batch size, augmentation, optimiser, seed
    steps_per_epoch: int | None = None  # None: one pass over ``data``, dropping the ragged last batch
    weights: np.ndarray | None = None  # per-image loss weights
    targets: np.ndarray | None = None  # per-image soft labels, N x classes
    class_balanced: bool = False  # batches drawn class-balanced, with replacement (a long-tail baseline)
    logit_adjust: float = 0.0  # tau of the logit-adjusted loss; 0: plain cross-entropy
    head_only: bool = False  # only the classifier head learns (a head refit)

    @property
    def steps(self) -> int:
        return self.cfg.epochs * epoch_steps(len(self.data), self.cfg.batch_size, self.steps_per_epoch)


def logit_adjustment(labels: np.ndarray, num_classes: int, tau: float) -> np.ndarray:
    """tau x log(class prior) per class (Menon et al., ICLR 2021, the loss form): added to the logits
    in training only, so a rare class must win by a larger margin and the plain logits at test time
    are balanced. A class absent from training gets the smallest prior present."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    counts[counts == 0] = counts[counts > 0].min()
    return (tau * np.log(counts / counts.sum())).astype(np.float32)


def batch_order(
    rng: np.random.Generator, labels: np.ndarray, steps: int, batch_size: int, class_balanced: bool
) -> np.ndarray:
    """The epoch's image indices, ``steps`` x ``batch_size`` of them: fresh permutations chained (as
    many as needed), or with ``class_balanced`` drawn with replacement so every class is equally
    likely (probability 1 / (classes x its count) per image): class-balanced resampling."""
    n = len(labels)
    if class_balanced:
        counts = np.bincount(labels)
        p = 1.0 / (np.count_nonzero(counts) * counts[labels])
        return rng.choice(n, size=steps * batch_size, replace=True, p=p / p.sum())
    passes = -(-steps * batch_size // n)
    return rng.permutation(n) if passes == 1 else np.concatenate([rng.permutation(n) for _ in range(passes)])


@dataclass(frozen=True)
class Optimiser:
    """The optimiser, its learning-rate schedule (stepped once a batch) and the fp16 gradient scaler, which
    scales the loss only on GPUs that need it (ganaug.device.needs_grad_scaler)."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler

    @classmethod
    def create(cls, learner: torch.nn.Module, cfg, total_steps: int, device: torch.device) -> Optimiser:
        optimizer = timm.optim.create_optimizer_v2(
            learner,
            opt="sgd" if cfg.optimizer == "sgd" else "adamw",
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            momentum=cfg.momentum,
        )
        scheduler = make_scheduler(optimizer, cfg.schedule, total_steps, cfg.lr)
        return cls(optimizer, scheduler, torch.amp.GradScaler("cuda", enabled=needs_grad_scaler(device)))

    def step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]


def phase_loss(phase: Phase, num_classes: int, device: torch.device):
    """The phase's loss of a batch, ``loss(logits, y, idx)``: its weights, soft targets, smoothing and logit
    adjustment bound (batch_loss)."""
    offset = (
        torch.from_numpy(logit_adjustment(phase.data.labels, num_classes, phase.logit_adjust)).to(device)
        if phase.logit_adjust
        else None
    )
    return partial(
        batch_loss,
        weights=phase.weights,
        targets=phase.targets,
        label_smoothing=phase.cfg.label_smoothing,
        logit_offset=offset,
    )


def phase_batches(phase: Phase, steps_per_epoch: int, norm: Normalizer, ranks: distributed.Ranks):
    """Every batch of the phase as (normalised images, labels, indices into its images) on the device, this rank's
    share. All epochs' batches are drawn up front (seeded by ``cfg.seed``), so loader workers augment ahead of the
    training."""
    cfg, device = phase.cfg, ranks.device
    rng = np.random.default_rng(cfg.seed)
    order = np.concatenate(
        [
            batch_order(rng, phase.data.labels, steps_per_epoch, cfg.batch_size, phase.class_balanced)[
                : steps_per_epoch * cfg.batch_size
            ]
            for _ in range(cfg.epochs)
        ]
    ).reshape(-1, cfg.batch_size)
    batched = AugmentedBatches(phase.data.images, order, cfg.augment, cfg.seed, ranks.shard)
    loader = iter(batch_loader(batched, device, loader_workers(device)))  # its workers start now
    labels = torch.from_numpy(phase.data.labels)

    def on_device():
        for images, idx in loader:
            idx = idx.numpy()
            yield norm.to_input(images, device), labels[idx].to(device, non_blocking=True), idx

    return on_device()


def learning_part(model, head_only: bool):
    """What the optimiser updates: the whole model, or (``head_only``) its classifier head, the rest frozen."""
    if not head_only:
        return model
    model.requires_grad_(False)
    head = model.get_classifier()
    head.requires_grad_(True)
    return head


def train_one_epoch(net, batches, steps: int, loss_fn, optimiser: Optimiser, ranks: distributed.Ranks) -> dict:
    """``steps`` optimiser steps on the next batches; the epoch's mean loss and accuracy over every rank's images."""
    loss_sum = correct = seen = 0
    for _ in range(steps):
        x, y, idx = next(batches)
        with autocast(ranks.device):
            logits = net(x)
            loss = loss_fn(logits, y, idx)
        optimiser.step(loss)
        # summed on the device in float64 (as Python floats are): read once an epoch, not once a step
        loss_sum = loss_sum + loss.detach().double() * len(idx)
        correct = correct + (logits.argmax(1) == y).sum()
        seen += len(idx)
    loss_sum, correct, seen = ranks.sum([float(loss_sum), int(correct), seen])
    return {"train_loss": loss_sum / seen, "train_acc": correct / seen}


def fit(
    model,
    phase: Phase,
    val: Split,
    num_classes: int,
    device: torch.device,
    norm: Normalizer | None = None,
    on_epoch=None,
    ranks: distributed.Ranks | None = None,
) -> tuple[list[dict], Normalizer]:
    """Train ``model`` in place for ``phase.cfg.epochs``; returns one row per epoch and the normaliser
    (``norm``, or fitted on the phase's images).

    An epoch is ``phase.steps_per_epoch`` batches from a fresh permutation of its images (default: one pass,
    dropping the ragged last batch); fewer steps than a pass trains on a random part of it per epoch,
    which is how an augmented run matches a real-only run's number of steps; more steps than a pass
    chain fresh permutations, which is how a real-only run matches a longer augmented run. The phase's
    ``weights`` (N) and ``targets`` (N x classes) are optional per-image loss weights and soft labels. The
    long-tail baselines: ``class_balanced`` draws batches class-balanced (with replacement), ``logit_adjust``
    (tau > 0) trains with the logit-adjusted loss. ``head_only``: only the classifier head learns, the
    backbone frozen with its BatchNorm statistics (classifier re-training, Kang et al. 2020; SYNAuG).
    ``on_epoch(row)`` is called after each epoch (MLflow logging).

    Under torchrun (``ranks``, by default this process's: see ganaug.distributed) every process draws and
    augments the same global batch and trains on its share, gradients averaged by DDP; rank 0 alone evaluates
    on validation."""
    cfg = phase.cfg
    ranks = ranks or distributed.Ranks.here(device)
    ranks.check_batch(cfg.batch_size, "train.batch_size")
    norm = norm or Normalizer.fit(phase.data.images)
    model.to(device=device, memory_format=memory_format(device))
    learner = learning_part(model, phase.head_only)
    net = ranks.wrap(model)  # model itself in one process
    steps = epoch_steps(len(phase.data), cfg.batch_size, phase.steps_per_epoch)
    optimiser = Optimiser.create(learner, cfg, cfg.epochs * steps, device)
    loss_fn = phase_loss(phase, num_classes, device)
    batches = phase_batches(phase, steps, norm, ranks)
    history = []
    for epoch in (bar := tqdm(range(1, cfg.epochs + 1), desc="train", unit="epoch", disable=not ranks.is_main)):
        net.train(not phase.head_only)  # a head refit keeps the backbone's BatchNorm statistics
        started = time.perf_counter()
        train = train_one_epoch(net, batches, steps, loss_fn, optimiser, ranks)
        ranks.average_batchnorm_stats(model)
        if not ranks.is_main:  # rank 0 evaluates and reports; the others only train
            continue
        val_metrics = evaluate(model, val, norm, device, num_classes, cfg.eval_batch_size)
        row = {
            "epoch": epoch,
            **train,
            "val_loss": val_metrics["loss"],
            "val_acc": val_metrics["accuracy"],
            "lr": optimiser.lr,
            "seconds": time.perf_counter() - started,
        }
        history.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_acc=f"{row['val_acc']:.3f}")
        if on_epoch is not None:
            on_epoch(row)
    if phase.head_only:
        model.requires_grad_(True)
    return history, norm
