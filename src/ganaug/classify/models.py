"""timm backbones; pretrained weights only from a local file, never from a hub."""

from __future__ import annotations

import json
from pathlib import Path

import timm
import torch
from safetensors.torch import load_file, save_file

from ganaug.errors import GanaugError


def create_classifier(
    name: str, num_classes: int, in_chans: int, pretrained_path: str | None = None
) -> torch.nn.Module:
    if not timm.is_model(name):
        raise GanaugError(f"train.model: unknown timm model '{name}' (see timm.list_models())")
    kwargs = {"num_classes": num_classes, "in_chans": in_chans}
    if pretrained_path is not None:
        path = Path(pretrained_path)
        if not path.is_file():
            raise GanaugError(
                f"train.pretrained_path: weights file '{path}' not found (a local .safetensors/.pth file)"
            )
        # timm adapts the stem to in_chans and drops a mismatched classifier head itself
        kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": str(path.resolve())})
    try:
        return timm.create_model(name, **kwargs)
    except (RuntimeError, KeyError, ValueError, OSError) as err:
        if pretrained_path is None:
            raise
        raise GanaugError(
            f"train.pretrained_path: could not load '{pretrained_path}' into {name} ({str(err).splitlines()[0]})"
        ) from None


def save_classifier(out_dir: Path, model: torch.nn.Module, config: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out_dir / "model.safetensors"))
    (out_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def load_classifier(model_dir: Path) -> tuple[torch.nn.Module, dict]:
    """Rebuild a saved classifier from its config.json + model.safetensors."""
    config_path, weights = model_dir / "config.json", model_dir / "model.safetensors"
    for p in (config_path, weights):
        if not p.is_file():
            raise GanaugError(f"{p}: not found (run `dvc repro train_scorer`)")
    config = json.loads(config_path.read_text())
    model = create_classifier(config["model"], len(config["classes"]), config["channels"])
    try:
        model.load_state_dict(load_file(str(weights)))
    except Exception as err:  # safetensors raises its own types for corrupt files
        raise GanaugError(
            f"{weights}: does not hold {config['model']} weights matching {config_path.name} "
            f"({str(err).splitlines()[0]})"
        ) from None
    return model.eval(), config
