"""Data-parallel training with torchrun: N processes, one model replica each, gradients averaged.

``GANAUG_DEVICES=N`` makes a training stage (train_scorer, train_gan, every experiment run) start
itself again under ``torchrun --standalone --nproc_per_node N``: N GPUs with NCCL on a CUDA machine,
N CPU processes with gloo otherwise. Every process draws the same global batch (same seed) and
trains on its 1/N share; rank 0 alone evaluates, writes outputs and logs to MLflow. It is an
environment setting, like the device, not a param: N = 1 is the plain single-process loop, and DVC
does not re-run stages when it changes. With N > 1 a classifier's BatchNorm statistics are synchronised
(SyncBatchNorm on CUDA; on CPU each rank's running statistics are averaged after every epoch, timm's
distribute_bn), but each batch's normalisation still sees its share only on CPU, so results match one
process within a tolerance, not bit for bit. Several machines: ``GANAUG_NNODES``, ``GANAUG_NODE_RANK`` and
``GANAUG_MASTER=host:port`` (or the launchers' own variables, ``nodes``) start torchrun with static rendezvous
(docs/scaling.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ganaug.errors import GanaugError

if TYPE_CHECKING:  # torch is imported where it is used: rank checks stay torch-free (selection.py)
    import torch

DEVICES_ENV = "GANAUG_DEVICES"
# several machines (static rendezvous): how many, which one this is, where rank 0 listens, which interface to use
NODES_ENV, NODE_RANK_ENV, MASTER_ENV, IFNAME_ENV = (
    "GANAUG_NNODES",
    "GANAUG_NODE_RANK",
    "GANAUG_MASTER",
    "GANAUG_SOCKET_IFNAME",
)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def requested() -> int:
    """Processes asked for with $GANAUG_DEVICES (1 when unset)."""
    value = os.environ.get(DEVICES_ENV, "1")
    if not value.isdigit() or int(value) < 1:
        raise GanaugError(f"${DEVICES_ENV}={value!r}: expected a whole number of processes, 1 or more")
    return int(value)


@dataclass(frozen=True)
class Nodes:
    """The machines one training stage spans: ``count`` of them, this one's ``rank``, rank 0's ``master`` address
    (host, port); one node (count 1) runs torchrun --standalone."""

    count: int = 1
    rank: int = 0
    master: tuple[str, int] | None = None


def _whole(name: str, value: str, least: int) -> int:
    if not value.isdigit() or int(value) < least:
        raise GanaugError(f"${name}={value!r}: expected a whole number, {least} or more")
    return int(value)


def nodes(env: dict | None = None) -> Nodes:
    """The nodes from $GANAUG_NNODES, $GANAUG_NODE_RANK and $GANAUG_MASTER=host:port, else from what launchers set:
    torchrun's own PET_NNODES / PET_NODE_RANK / PET_MASTER_ADDR + PET_MASTER_PORT, SLURM's SLURM_NNODES /
    SLURM_NODEID with MASTER_ADDR + MASTER_PORT, SkyPilot's SKYPILOT_NUM_NODES / SKYPILOT_NODE_RANK /
    SKYPILOT_NODE_IPS (its first line is the head). One node when none is set."""
    env = os.environ if env is None else env
    for count, rank, host, port in (
        (NODES_ENV, NODE_RANK_ENV, MASTER_ENV, None),
        ("PET_NNODES", "PET_NODE_RANK", "PET_MASTER_ADDR", "PET_MASTER_PORT"),
        ("SLURM_NNODES", "SLURM_NODEID", "MASTER_ADDR", "MASTER_PORT"),
        ("SKYPILOT_NUM_NODES", "SKYPILOT_NODE_RANK", "SKYPILOT_NODE_IPS", "MASTER_PORT"),
    ):
        if count not in env or _whole(count, env[count], 1) == 1:
            continue
        n, r = _whole(count, env[count], 1), _whole(rank, env.get(rank, ""), 0)
        if r >= n:
            raise GanaugError(f"${rank}={r}: expected a node rank below ${count}={n}")
        address = env.get(host, "").strip().splitlines()[0] if env.get(host, "").strip() else ""
        if port is None:  # GANAUG_MASTER=host:port
            address, _, port_text = address.rpartition(":")
        else:
            port_text = env.get(port, "29500")
        if not address or not port_text.isdigit():
            where = f"${host}" + ("" if port is None else f" and ${port}")
            raise GanaugError(f"{where}: expected rank 0's address as host:port for {n} nodes (got {env.get(host)!r})")
        return Nodes(n, r, (address, int(port_text)))
    return Nodes()


def launch_command(module: str, nproc: int, argv: list[str], spread: Nodes | None = None) -> list[str]:
    """torchrun's command line: --standalone on one node; on several, static rendezvous (fixed node ranks, so
    the node that runs the stage for DVC is rank 0, which dynamic c10d rendezvous does not promise)."""
    spread = spread or Nodes()
    if spread.count == 1:
        where = ["--standalone"]
    else:
        host, port = spread.master
        where = [f"--nnodes={spread.count}", f"--node-rank={spread.rank}", f"--master-addr={host}"]
        where += [f"--master-port={port}", "--max-restarts=0"]
    return [sys.executable, "-m", "torch.distributed.run", *where, f"--nproc_per_node={nproc}", "-m", module, *argv]


def launch_env(env: dict | None = None) -> dict:
    """The environment torchrun's workers get: $GANAUG_SOCKET_IFNAME as gloo's and NCCL's interface (both bind to
    whatever the hostname resolves to otherwise, often loopback, and the other nodes cannot reach it)."""
    env = dict(os.environ if env is None else env)
    if env.get(IFNAME_ENV):
        env.setdefault("GLOO_SOCKET_IFNAME", env[IFNAME_ENV])
        env.setdefault("NCCL_SOCKET_IFNAME", env[IFNAME_ENV])
    return env


def relaunch() -> int | None:
    """Under $GANAUG_DEVICES > 1 or several nodes, and not yet under torchrun: run this process's module (started
    with ``python -m``) under torchrun and return its exit status. Otherwise None: this process trains."""
    if "LOCAL_RANK" in os.environ:  # already a torchrun worker
        return None
    nproc, spread = requested(), nodes()
    if nproc == 1 and spread.count == 1:
        return None
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    if spec is None:
        raise GanaugError(f"${DEVICES_ENV}={nproc}: start the stage as `python -m ganaug.stages.<name>`")
    if spread.rank != 0 and "DVC_STAGE" in os.environ:  # rank 0 alone writes, so it must be where DVC records
        raise GanaugError(
            f"node rank {spread.rank}: dvc runs this stage here, but rank 0 writes its outputs; run dvc on the node "
            f"of rank 0 and `python -m {spec.name}` on the others"
        )
    return subprocess.run(launch_command(spec.name, nproc, sys.argv[1:], spread), env=launch_env()).returncode


def init(device: torch.device) -> torch.device:
    """Join the process group torchrun set up (no-op in a single process); each rank's device."""
    if world_size() == 1:
        return device
    import torch
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        from datetime import timedelta

        # the other ranks wait in their next collective while rank 0 evaluates (FID, validation)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(hours=2))
    return device


def check_batch(batch_size: int, name: str) -> None:
    """Equal shares of every batch, or the ranks' means weigh unequal parts and their random
    streams (DiffAugment draws one number per image) drift apart."""
    if world_size() > 1 and batch_size % world_size():
        raise GanaugError(
            f"{name} = {batch_size} does not split into {world_size()} equal shares "
            f"(${DEVICES_ENV}={world_size()}): use a multiple of {world_size()}"
        )


def rank0_rng():
    """Around work rank 0 alone does (evaluation: KID draws random subsets): its random numbers
    must not move rank 0's generator, or its next global batch differs from the other ranks'. A
    no-op in one process, whose results stay exactly as they were."""
    import contextlib

    import torch

    return torch.random.fork_rng(devices=[]) if active() else contextlib.nullcontext()


def active() -> bool:
    if world_size() == 1:
        return False
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` in DistributedDataParallel when training on several processes, else itself."""
    if not active():
        return model
    import torch
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DistributedDataParallel(model, device_ids=[device.index])
    return DistributedDataParallel(model)


def average_batchnorm_stats(model: torch.nn.Module, device: torch.device) -> None:
    """The BatchNorm running statistics averaged over ranks (timm.utils.distribute_bn), so that what rank 0
    evaluates and saves reflects every rank's batches, not its share only. Every rank must call it; on CUDA
    SyncBatchNorm keeps them equal already."""
    if not active() or device.type == "cuda":
        return
    from timm.utils import distribute_bn

    distribute_bn(model, world_size(), reduce=True)


def shard(batch):
    """This rank's share of a global batch: every world_size-th item from its rank on. Strided, not
    contiguous: the classifier's batch indices are sorted and the prepared splits are ordered by
    class, so contiguous halves would give each rank's BatchNorm different classes (its cost measured:
    docs/scaling.md)."""
    if not active():
        return batch
    return batch[rank() :: world_size()]


def average_gradients(module: torch.nn.Module) -> None:
    """All-reduce ``module``'s gradients to their mean over ranks, in one flat buffer. For the GAN's
    two networks, which take turns in one graph (DDP's per-module hooks would fire for D during the
    G step): the approach of StyleGAN2-ADA's training loop."""
    if not active():
        return
    import torch
    import torch.distributed as dist

    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def sum_over_ranks(values: list[float]) -> list[float]:
    """Per-rank running totals (loss sums, counts) summed over ranks; themselves in one process."""
    if not active():
        return values
    import torch
    import torch.distributed as dist

    on = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"  # NCCL: CUDA only
    total = torch.tensor(values, dtype=torch.float64, device=on)
    dist.all_reduce(total)
    return total.tolist()


@dataclass(frozen=True)
class Ranks:
    """A training loop's view of the torchrun processes, made once and passed to the loop: its device, this
    process's rank, and the collectives the loop needs. In one process every method leaves things as they are.
    The methods are this module's functions with the device bound (the functions stay for other callers)."""

    device: torch.device
    rank: int = 0
    world_size: int = 1

    @classmethod
    def here(cls, device: torch.device) -> Ranks:
        """This process under torchrun's environment (rank 0 of 1 outside it), training on ``device``."""
        return cls(device, rank(), world_size())

    @classmethod
    def join(cls, device: torch.device) -> Ranks:
        """Join the process group (``init``): the ranks of a stage that trains, each on its own device."""
        return cls.here(init(device))

    @property
    def is_main(self) -> bool:
        """Rank 0: it alone evaluates, writes outputs and logs."""
        return self.rank == 0

    def check_batch(self, batch_size: int, name: str) -> None:
        check_batch(batch_size, name)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        return wrap(model, self.device)

    def shard(self, batch):
        return shard(batch)

    def sum(self, values: list[float]) -> list[float]:
        return sum_over_ranks(values)

    def average_gradients(self, module: torch.nn.Module) -> None:
        average_gradients(module)

    def average_batchnorm_stats(self, model: torch.nn.Module) -> None:
        average_batchnorm_stats(model, self.device)

    def rank0_rng(self):
        return rank0_rng()


def shutdown() -> None:
    if active():
        import torch.distributed as dist

        dist.destroy_process_group()
