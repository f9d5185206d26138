"""A tiny DDPM: a diffusers UNet2DModel (~0.2M parameters) trained in seconds on given images, saved with
``save_pretrained`` as a UNet folder or as a DDPMPipeline folder (unet/ + scheduler/): what the tests and the
end-to-end check load as ``gan.pretrained`` for gan.arch ddpm, in place of a real pretrained DDPM (e.g. one
trained on CIFAR-10 at 32 px), which cannot be downloaded here.

It is trained at its own size and channels, converting the images the way the generator converts them, so
a model of another resolution and colour than the data's exercises that conversion:

    python -m ganaug.tiny.unet --out weights/tiny-ddpm              # data/prepared's train images, 24 px RGB
    dvc add weights/tiny-ddpm
    dvc exp run -S gan.arch=ddpm -S gan.pretrained=weights/tiny-ddpm -S gan.steps=0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ganaug.gan.diffusion import SCHEDULE, DiffusionGenerator, denoising_loss
from ganaug.gan.pixels import from_uint8


def tiny_unet(channels: int, image_size: int):
    """A two-level UNet2DModel (16 and 32 channels, attention at the lower level), randomly initialised."""
    from diffusers import UNet2DModel

    return UNet2DModel(
        sample_size=image_size,
        in_channels=channels,
        out_channels=channels,
        layers_per_block=1,
        block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
    )


def train_tiny_ddpm(
    images: np.ndarray, channels: int, image_size: int, steps: int, seed: int, batch_size: int = 32, lr: float = 2e-3
):
    """A tiny UNet of ``channels`` x ``image_size`` trained as a DDPM (SCHEDULE) on ``images`` (uint8 N x H x W x C,
    converted to its size and channels) for ``steps`` Adam steps; same images and seed, same weights."""
    torch.manual_seed(seed)
    net = tiny_unet(channels, image_size)
    G = DiffusionGenerator(1, images.shape[-1], images.shape[1], net, SCHEDULE, sample_steps=1)  # the conversion
    real = from_uint8(images)
    opt = torch.optim.Adam(net.parameters(), lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in tqdm(range(steps), desc="tiny ddpm", unit="step"):
        loss = denoising_loss(G, real[torch.randint(len(real), (batch_size,), generator=gen)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval()


def save_tiny(net, folder: Path, form: str) -> Path:
    """``form`` unet: the UNet2DModel's folder (config.json + weights); pipeline: a DDPMPipeline folder, the UNet
    beside the DDPMScheduler of the schedule it learned."""
    from diffusers import DDPMPipeline, DDPMScheduler

    if form == "unet":
        net.save_pretrained(folder)
    else:
        DDPMPipeline(unet=net, scheduler=DDPMScheduler(**SCHEDULE)).save_pretrained(folder)
    return folder


def main(argv: list[str] | None = None) -> None:
    from ganaug import paths
    from ganaug.data.store import load_split

    parser = argparse.ArgumentParser(prog="python -m ganaug.tiny.unet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the folder to save it in (e.g. weights/tiny-ddpm)")
    parser.add_argument("--split", choices=("train", "unlabelled"), default="train", help="data/prepared's images")
    parser.add_argument("--image-size", type=int, default=24, help="its native size (another than the data's)")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=3, help="its channels (3: RGB)")
    parser.add_argument("--steps", type=int, default=500, help="Adam steps (about a minute on a CPU core)")
    parser.add_argument("--form", choices=("pipeline", "unet"), default="pipeline")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    images = load_split(paths.PREPARED / f"{args.split}.npz").images
    net = train_tiny_ddpm(images, args.channels, args.image_size, args.steps, args.seed)
    save_tiny(net, args.out, args.form)
    print(
        f"tiny ddpm: {args.image_size} px x {args.channels} channels, {args.steps} steps on {len(images)} "
        f"{args.split} images -> {args.out} ({args.form} folder)"
    )


if __name__ == "__main__":
    main()
