"""The kept GAN: generator and discriminator weights (safetensors) + config.json, and loading them."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file

from ganaug.errors import GanaugError
from ganaug.gan.networks import Discriminator, Generator


def save_gan(out_dir: Path, G: Generator, D: Discriminator, config: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in G.state_dict().items()}, str(out_dir / "generator.safetensors"))
    save_file({k: v.contiguous() for k, v in D.state_dict().items()}, str(out_dir / "discriminator.safetensors"))
    (out_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def load_gan(model_dir: Path) -> tuple[Generator, Discriminator, dict]:
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise GanaugError(f"{config_path}: not found (run `dvc repro train_gan`)")
    config = json.loads(config_path.read_text())
    g = config["gan"]
    n = len(config["classes"])
    # GANs saved before min_width existed: the generator had a floor of 8 channels, the discriminator none
    G = Generator(n, config["channels"], config["image_size"], g["z_dim"], g["g_width"], g.get("min_width", 8))
    D = Discriminator(n, config["channels"], config["image_size"], g["d_width"], g.get("min_width", 1))
    for net, name in ((G, "generator.safetensors"), (D, "discriminator.safetensors")):
        path = model_dir / name
        try:
            net.load_state_dict(load_file(str(path)))
        except Exception as err:  # missing, corrupt or mismatched
            raise GanaugError(f"{path}: not loadable as the GAN in {config_path.name} ({str(err).splitlines()[0]})") from None
    return G.eval(), D.eval(), config
