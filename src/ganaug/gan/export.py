"""The kept GAN: generator and discriminator weights (safetensors) + config.json, and loading them."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file

from ganaug.errors import GanaugError
from ganaug.gan.archs import build_networks


def save_gan(out_dir: Path, G, D, config: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in G.state_dict().items()}, str(out_dir / "generator.safetensors"))
    save_file({k: v.contiguous() for k, v in D.state_dict().items()}, str(out_dir / "discriminator.safetensors"))
    (out_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def load_gan(model_dir: Path):
    """(G, D, config) of the kept GAN, networks of the architecture its config names (default cgan)."""
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise GanaugError(f"{config_path}: not found (run `dvc repro train_gan`)")
    config = json.loads(config_path.read_text())
    G, D = build_networks(len(config["classes"]), config["channels"], config["image_size"], config["gan"])
    for net, name in ((G, "generator.safetensors"), (D, "discriminator.safetensors")):
        path = model_dir / name
        try:
            net.load_state_dict(load_file(str(path)))
        except Exception as err:  # missing, corrupt or mismatched
            raise GanaugError(
                f"{path}: not loadable as the GAN in {config_path.name} ({str(err).splitlines()[0]})"
            ) from None
    return G.eval(), D.eval(), config
