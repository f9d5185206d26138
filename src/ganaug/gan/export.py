"""The kept GAN: generator and discriminator weights (safetensors) + config.json, and loading them.

A generator used as it was loaded from its weights folder (gan.steps 0, an Arch with ``loads_weights``) is kept by
reference: config.json alone, recording the folder (its gan.pretrained) and the folder's md5, never a copy of
weights that may be gigabytes. Loading rebuilds it from that folder, and refuses when the folder has changed."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file

from ganaug.digests import dvc_md5
from ganaug.errors import GanaugError
from ganaug.gan.archs import build_networks
from ganaug.weights import weights_md5

NETWORKS = ("generator.safetensors", "discriminator.safetensors")


def save_gan(out_dir: Path, G, D, config: dict, by_reference: bool = False) -> None:
    """``by_reference``: the networks are their weights folder's, unchanged (``config`` records its weights_md5)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if by_reference:
        if "weights_md5" not in config:
            raise ValueError("save_gan: a generator kept by reference needs its weights_md5 in config")
        config = {**config, "by_reference": True}
        for name in NETWORKS:  # no stale copy beside the reference
            (out_dir / name).unlink(missing_ok=True)
    else:
        save_file({k: v.contiguous() for k, v in G.state_dict().items()}, str(out_dir / NETWORKS[0]))
        save_file({k: v.contiguous() for k, v in D.state_dict().items()}, str(out_dir / NETWORKS[1]))
    (out_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def check_weights(config: dict, config_path: Path) -> None:
    """The weights folder a saved generator was built from, unchanged since (its md5 is the one recorded)."""
    folder = Path(config["gan"]["pretrained"])
    if not folder.is_dir():
        raise GanaugError(
            f"{config_path}: its weights folder {folder} (gan.pretrained) is missing; restore it (`dvc pull {folder}`) "
            "or re-run `dvc repro train_gan`"
        )
    found = weights_md5(folder)
    if found != config["weights_md5"]:
        raise GanaugError(
            f"{config_path}: its weights folder {folder} has changed since train_gan used it (md5 {found}, recorded "
            f"{config['weights_md5']}); re-run `dvc repro train_gan`"
        )


def load_gan(model_dir: Path):
    """(G, D, config) of the kept GAN, networks of the architecture its config names (default cgan)."""
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise GanaugError(f"{config_path}: not found (run `dvc repro train_gan`)")
    config = json.loads(config_path.read_text())
    if "weights_md5" in config:
        check_weights(config, config_path)
    G, D = build_networks(len(config["classes"]), config["channels"], config["image_size"], config["gan"])
    if config.get("by_reference"):  # the networks as built from the weights folder
        return G.eval(), D.eval(), config
    for net, name in zip((G, D), NETWORKS):
        path = model_dir / name
        try:
            net.load_state_dict(load_file(str(path)))
        except Exception as err:  # missing, corrupt or mismatched
            raise GanaugError(
                f"{path}: not loadable as the GAN in {config_path.name} ({str(err).splitlines()[0]})"
            ) from None
    return G.eval(), D.eval(), config


def provenance(model_dir: Path, config: dict) -> dict:
    """What a pool records of the generator that made it: the md5 of its weights file (generator_md5), and the
    weights folder's md5 (weights_md5) whenever it started from one (alone when it is kept by reference)."""
    weights = {"weights_md5": config["weights_md5"]} if "weights_md5" in config else {}
    if config.get("by_reference"):  # the generator is its weights folder: one md5, not the same one twice
        return weights
    return {"generator_md5": dvc_md5(model_dir / NETWORKS[0]), **weights}
