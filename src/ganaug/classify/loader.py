"""A phase's training batches through a torch DataLoader: worker processes draw and augment (albumentations,
on uint8) while the device trains, and on CUDA the batches arrive in pinned memory for an asynchronous copy.

Batch k of a phase is a function of (seed, k) alone: its indices come from the phase's order, drawn up front,
and its augmentation is seeded by (seed, k). The batches are therefore the same with 0, 2 or 8 workers, and
``GANAUG_LOADER_WORKERS`` is a machine setting like ``GANAUG_DEVICE``, not a param (it changes no result)."""

from __future__ import annotations

import os

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ganaug import distributed
from ganaug.classify.augment import augment_batch, build_augment
from ganaug.errors import GanaugError

WORKERS_ENV = "GANAUG_LOADER_WORKERS"
MAX_DEFAULT_WORKERS = 4


def loader_workers(device: torch.device) -> int:
    """``GANAUG_LOADER_WORKERS`` when set; else on CUDA up to 4 of this process's cores less one (the main process
    feeds the GPU), and 0 on the CPU, where workers would take cores from the training itself (benchmarks/
    input_pipeline.py measured it)."""
    wanted = os.environ.get(WORKERS_ENV, "").strip()
    if wanted:
        if not wanted.isdigit():
            raise GanaugError(f"{WORKERS_ENV}={wanted}: expected a whole number of worker processes (0: none)")
        return int(wanted)
    if device.type != "cuda":
        return 0
    return max(0, min(MAX_DEFAULT_WORKERS, len(os.sched_getaffinity(0)) - 1))


class AugmentedBatches(Dataset):
    """Item k: (uint8 B x H x W x C images, their int64 indices) of global batch k, this rank's share of it.

    ``order`` is steps x batch size; every torchrun rank augments the whole global batch with the same seed
    and keeps its part (``shard``: ``Ranks.shard``), so the union over ranks is the one-process batch."""

    def __init__(self, images: np.ndarray, order: np.ndarray, augment_cfg, seed: int, shard=distributed.shard):
        self.images, self.order, self.seed, self.shard = images, order, seed, shard
        self.augment = build_augment(augment_cfg, images.shape[1], seed)

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = np.sort(self.order[k])  # sorted: a gather in memory order
        images = self.images[idx]
        if self.augment is not None:
            self.augment.set_random_seed(batch_seed(self.seed, k))
            images = augment_batch(self.augment, images)
        return torch.from_numpy(self.shard(images)), torch.from_numpy(self.shard(idx))


def batch_seed(seed: int, k: int) -> int:
    return int(np.random.SeedSequence([seed, k]).generate_state(1)[0])


def batch_loader(batches: AugmentedBatches, device: torch.device, workers: int) -> DataLoader:
    """One loader for the whole phase (workers start once, not once an epoch), batches in order. Each worker
    runs torch on one thread (the DataLoader's own setting); nothing else is set in a forked worker, where
    touching a thread pool the parent used (OpenCV's) can deadlock."""
    return DataLoader(
        batches,
        batch_size=None,  # an item is already a batch
        shuffle=False,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers else None,
        persistent_workers=False,
    )
