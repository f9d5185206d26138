"""GAN checkpoints: weights in safetensors, optimizer state via torch.save (loaded with
weights_only=True), progress in JSON. Written to a temporary folder and swapped in, so a kill
mid-write leaves the previous checkpoint intact. A checkpoint that is corrupt or does not match the
networks is an error naming the folder -- never a silent fresh start that overwrites it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ganaug.errors import GanaugError

WEIGHTS, OPTIM, META = "weights.safetensors", "optim.pt", "meta.json"


def save_checkpoint(folder: Path, tensors: dict[str, torch.Tensor], optim: dict, meta: dict) -> None:
    tmp, old = folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / WEIGHTS))
    torch.save(optim, tmp / OPTIM)
    (tmp / META).write_text(json.dumps(meta, indent=1))
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(folder: Path) -> tuple[dict[str, torch.Tensor], dict, dict] | None:
    """None when there is no checkpoint; GanaugError when there is one that can't be read."""
    old = folder.with_name(folder.name + ".old")
    if not folder.exists() and old.exists():  # killed between the two renames
        old.rename(folder)
    if not folder.exists() or not any(folder.iterdir()):
        return None
    try:
        tensors = load_file(str(folder / WEIGHTS))
        optim = torch.load(folder / OPTIM, map_location="cpu", weights_only=True)
        meta = json.loads((folder / META).read_text())
    except Exception as err:  # safetensors, pickle and json each raise their own types
        raise GanaugError(
            f"{folder}: GAN checkpoint is unreadable ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}); "
            "delete that folder to start training afresh"
        ) from None
    return tensors, optim, meta


def load_state(module: torch.nn.Module, tensors: dict[str, torch.Tensor], prefix: str, folder: Path) -> None:
    state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        raise GanaugError(
            f"{folder}: GAN checkpoint does not match the networks in params.yaml ({str(err).splitlines()[0]}); "
            "delete that folder to start training afresh"
        ) from None
