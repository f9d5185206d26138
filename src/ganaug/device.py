"""The device is chosen once per process: ``GANAUG_DEVICE`` (``cpu``, ``cuda`` or ``cuda:N``) when set, else
CUDA when present, else the CPU; each stage prints the one it uses. Mixed precision and channels-last apply
on CUDA only (measured: no gain from bf16 autocast or channels-last on the 2-core CPU): bf16 on compute
capability 8 and up (Ampere on), fp16 with a GradScaler below it, where bf16 is emulated and slow.

Like the device, ``GANAUG_DEVICE`` is an environment setting, not a param: DVC does not re-run a stage when
it changes, and results on another device differ in floating point (compare runs of one machine)."""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

from ganaug.errors import GanaugError

DEVICE_ENV = "GANAUG_DEVICE"
_announced: set[str] = set()


def pick_device() -> torch.device:
    wanted = os.environ.get(DEVICE_ENV, "").strip()
    if not wanted:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = _parse(wanted)
    if str(device) not in _announced:  # once per process: stages and the runs inside them ask again
        _announced.add(str(device))
        print(f"device: {describe(device)}", flush=True)
    return device


def _parse(wanted: str) -> torch.device:
    try:
        device = torch.device(wanted)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise GanaugError(f"{DEVICE_ENV}={wanted}: expected cpu, cuda or cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise GanaugError(
                f"{DEVICE_ENV}={wanted}: this machine has no CUDA device that torch {torch.__version__} can use; "
                f"unset it or set {DEVICE_ENV}=cpu"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise GanaugError(
                f"{DEVICE_ENV}={wanted}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
            )
    return device


def describe(device: torch.device) -> str:
    if device.type != "cuda":
        return f"cpu ({torch.get_num_threads()} threads)"
    index = device.index if device.index is not None else torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    precision = {torch.bfloat16: "bf16", torch.float16: "fp16 + GradScaler"}[half_precision(device)]
    return f"cuda:{index} ({torch.cuda.get_device_name(index)}, compute capability {major}.{minor}, {precision})"


def half_precision(device: torch.device) -> torch.dtype | None:
    """The autocast dtype: bf16 where the GPU computes it natively (compute capability 8+), else fp16;
    None on the CPU (full precision)."""
    if device.type != "cuda":
        return None
    major, _ = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if major >= 8 else torch.float16


def autocast(device: torch.device):
    dtype = half_precision(device)
    return contextlib.nullcontext() if dtype is None else torch.autocast("cuda", dtype=dtype)


def needs_grad_scaler(device: torch.device) -> bool:
    """fp16's small range underflows gradients without loss scaling; bf16 has float32's range."""
    return half_precision(device) == torch.float16


def memory_format(device: torch.device) -> torch.memory_format:
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Same params and seed -> same metrics on the same machine. ``deterministic: false`` (train.deterministic)
    trades that for speed on a GPU: cuDNN picks its fastest algorithms (benchmark mode) and the nondeterministic
    ones are allowed, so two runs of one seed differ in floating point; on the CPU nothing changes."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.benchmark = not deterministic


class ShrinkOnOutOfMemory:
    """Runs batch work in pieces that fit the device: a piece that runs out of CUDA memory is split in half and
    retried, and later pieces keep the smaller size (each halving said in one line). The caller draws its random inputs
    per configured batch before calling, so what a batch holds does not depend on the memory there was; only
    floating point may differ with the piece size. At one image that still does not fit, it is refused."""

    def __init__(self, what: str, setting: str):
        self.what, self.setting, self.piece = what, setting, None

    def run(self, fn, n: int) -> list:
        """[fn(start, stop) for consecutive pieces covering range(n)]."""
        outs, start = [], 0
        while start < n:
            stop = min(start + (self.piece or n), n)
            try:
                outs.append(fn(start, stop))
            except torch.OutOfMemoryError:
                if stop - start == 1:
                    raise GanaugError(
                        f"{self.what}: one image does not fit in the device's memory; free the GPU or set "
                        f"{DEVICE_ENV}=cpu"
                    ) from None
                self.piece = (stop - start) // 2
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                print(
                    f"{self.what}: out of device memory at {stop - start} images a batch; going on with {self.piece} "
                    f"(set {self.setting} to at most that to skip the retry)",
                    flush=True,
                )
                continue
            start = stop
        return outs
