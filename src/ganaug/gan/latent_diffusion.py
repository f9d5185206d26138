"""A pretrained text-to-image latent diffusion model (gan.arch: sd): a diffusers Stable Diffusion pipeline folder
(gan.pretrained, local, never downloaded), prompted with each class's text (prompts.yaml, ganaug.prompts).

- img2img ("real guidance", He et al. 2023; DA-Fusion's augmentation, Trabucco et al. 2024): every real training
  image is encoded by the VAE, noised to gan.strength of the schedule and denoised with its class prompt under
  classifier-free guidance (gan.guidance_scale); the variant keeps its source's label and records which source
  it came from (source_ids.npy, as a translation pool does).
- txt2img: from the prompt alone, labelled with the prompt's class.

Both go through diffusers' StableDiffusionImg2ImgPipeline / StableDiffusionPipeline, built from the folder's UNet,
VAE, CLIP text encoder and tokenizer with a deterministic DDIM scheduler (eta 0) of gan.sample_steps steps (img2img
runs the last gan.strength of them, as diffusers does), and no safety checker. Images are generated at the model's
own resolution (sources resized up, gray made RGB) and resized to data.image_size in the data's channels.

Nothing is trained here (gan.steps must be 0). There is no discriminator: ``LatentDenoisingJudge`` scores realism
as minus the UNet's latent denoising error at a fixed mid timestep with fixed noise, under the empty prompt, so
cr-sam and the RL sampler have a realism to read (as ganaug.gan.diffusion.DenoisingJudge for the ddpm). No latent
space: DAPPER's projection does not apply.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from ganaug.errors import GanaugError
from ganaug.gan.diffusion import (
    JUDGE_LEVEL,
    convert,
)  # the pretrained ddpm's gray<->RGB + resize, the same at both edges

if TYPE_CHECKING:
    from ganaug.gan.interface import Inputs

EXPECTED = "a diffusers Stable Diffusion pipeline folder"
COMPONENTS = {  # what a Stable Diffusion folder's model_index.json names, and the class each is loaded as
    "unet": "UNet2DConditionModel",
    "vae": "AutoencoderKL",
    "text_encoder": "CLIPTextModel",
    "tokenizer": "CLIPTokenizer",
    "scheduler": "DDIMScheduler",  # whatever the folder's scheduler, its config is read into DDIM
}
# images per pipeline call: SD at 512 px with guidance runs 2 x this UNet rows, ~8 GB in fp16 at 8; more gains
# little on a GPU and nothing on a CPU
MAX_BATCH = 8
JUDGE_BATCH = 8  # images per judge pass (the score stage's batches are sized for the scorer, not a 512 px VAE)
GRID_VARIANTS = 4  # images per class in samples.png


def no_training(gan, draws, cfg):
    raise GanaugError("gan.arch sd: not trained here (gan.steps must be 0)")


def load_components(path: str | Path) -> dict:
    """The pipeline folder's components, loaded offline; a missing, placeholder or wrong folder is refused in one
    line naming it and what was expected."""
    from ganaug.weights import given, local_folder

    if not given(path):
        raise GanaugError(f"gan.pretrained: {path} is the no-weights placeholder (gan.arch sd needs {EXPECTED})")
    folder = local_folder(path, "gan.pretrained", EXPECTED, "model_index.json")
    try:
        index = json.loads((folder / "model_index.json").read_text())
    except (ValueError, OSError) as err:
        raise GanaugError(
            f"gan.pretrained: {folder}/model_index.json: unreadable ({err}; expected {EXPECTED})"
        ) from None
    missing = [name for name in COMPONENTS if not isinstance(index.get(name), list) or index[name][1] is None]
    if missing:
        raise GanaugError(
            f"gan.pretrained: {folder}: model_index.json names no {missing[0]} (expected {EXPECTED}, "
            f"with {', '.join(COMPONENTS)}; it is a {index.get('_class_name', 'pipeline of unknown class')})"
        )
    if index["unet"][1] != COMPONENTS["unet"]:
        raise GanaugError(
            f"gan.pretrained: {folder}: its unet is a {index['unet'][1]}, not a text-conditional "
            f"UNet2DConditionModel (expected {EXPECTED})"
        )
    import diffusers
    import transformers

    parts = {}
    for name, cls in COMPONENTS.items():
        library = diffusers if hasattr(diffusers, cls) else transformers
        try:
            parts[name] = getattr(library, cls).from_pretrained(folder, subfolder=name, local_files_only=True)
        except Exception as err:  # missing, corrupt or mismatched files
            raise GanaugError(
                f"gan.pretrained: {folder}/{name}: not loadable as a {cls} ({str(err).splitlines()[0]}; "
                f"expected {EXPECTED})"
            ) from None
    return parts


def image_seed(seed: int, index: int) -> int:
    """The seed of pool image ``index``: one torch generator per image, so a pool does not depend on batching."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint64)[0] >> 1)


class LatentDiffusionGenerator(nn.Module):
    """The pipeline's networks (unet, vae, text_encoder: saved weights are the folder's; ``parts`` as
    load_components gives them) and how to run them: ``generate(pipe, prompts, sources or None, seeds)`` -> uint8
    images at the data's size and channels."""

    takes = "prompt"
    conditional = True
    z_dim = 0  # no latent space

    def __init__(self, num_classes: int, channels: int, image_size: int, gan: dict, parts: dict):
        super().__init__()
        self.num_classes, self.channels, self.image_size = num_classes, channels, image_size
        self.unet, self.vae, self.text_encoder = parts["unet"], parts["vae"], parts["text_encoder"]
        self.tokenizer, self.scheduler = parts["tokenizer"], parts["scheduler"]
        self.pretrained, self.mode = str(gan["pretrained"]), gan["sd_mode"]
        self.strength, self.guidance_scale, self.sample_steps = (
            gan["strength"],
            gan["guidance_scale"],
            gan["sample_steps"],
        )
        # the resolution the model was trained at: its latent size x the VAE's downsampling
        self.native = self.unet.config.sample_size * 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.requires_grad_(False).eval()

    def ready(self, device: torch.device) -> LatentDiffusionGenerator:
        """On ``device``, in the project's half precision on CUDA (bf16 from compute capability 8, else fp16; its
        wider range keeps a VAE from overflowing where it can), fp32 on a CPU."""
        from ganaug.device import half_precision

        dtype = half_precision(device)
        if dtype is not None and self.unet.dtype != dtype:
            self.to(dtype)
        return self.to(device)

    def pipeline(self, img2img: bool):
        from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

        pipe = (StableDiffusionImg2ImgPipeline if img2img else StableDiffusionPipeline)(
            vae=self.vae,
            text_encoder=self.text_encoder,
            tokenizer=self.tokenizer,
            unet=self.unet,
            scheduler=self.scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        pipe.set_progress_bar_config(disable=True)  # the pool's own bar counts batches
        return pipe

    def generate(self, pipe, prompts: list[str], sources: np.ndarray | None, seeds: list[int]) -> np.ndarray:
        """uint8 N x image_size x image_size x channels: img2img from ``sources`` (uint8 N x H x W x C, any size and
        channels) with ``pipe`` = pipeline(img2img=True), or txt2img (``sources`` None); image i drawn from
        ``seeds[i]`` alone."""
        generators = [torch.Generator().manual_seed(s) for s in seeds]  # on the CPU: the same noise on any device
        common = {
            "prompt": prompts,
            "num_inference_steps": self.sample_steps,
            "guidance_scale": self.guidance_scale,
            "eta": 0.0,
            "generator": generators,
            "output_type": "np",
        }
        if sources is None:
            out = pipe(height=self.native, width=self.native, **common).images
        else:
            x = convert(torch.from_numpy(np.asarray(sources)).permute(0, 3, 1, 2).float().div(255), 3, self.native)
            out = pipe(image=x.clamp(0, 1), strength=self.strength, **common).images
        x = convert(torch.from_numpy(out).permute(0, 3, 1, 2).float(), self.channels, self.image_size)
        return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


class LatentDenoisingJudge(nn.Module):
    """The discriminator's place for the sd generator: realism = minus the UNet's error at predicting the noise
    (or velocity, for a v-prediction model) added to an image's VAE latent (the posterior mean) at JUDGE_LEVEL,
    with fixed noise, under the empty prompt: how natural the image is to the model, whatever its label (the
    scorer's confidence judges the label; a label-free realism also needs no class names here). No parameters of
    its own: it reads the generator it is bound to."""

    def __init__(self):
        super().__init__()
        self._generator: list[LatentDiffusionGenerator] = []  # a list: not a submodule, its weights are G's

    def bind(self, G: LatentDiffusionGenerator) -> LatentDenoisingJudge:
        self._generator[:] = [G]
        return self

    @torch.no_grad()
    def judge(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        if not self._generator:
            raise RuntimeError("LatentDenoisingJudge: bind it to its generator first")
        G = self._generator[0].ready(x.device)  # scoring moves the judge, whose weights are the generator's
        return torch.cat([self.error(G, x[i : i + JUDGE_BATCH]) for i in range(0, len(x), JUDGE_BATCH)]).neg(), None

    def error(self, G: LatentDiffusionGenerator, x: torch.Tensor) -> torch.Tensor:
        x = convert(x.float(), 3, G.native)  # as the pool's sources are
        dtype = G.unet.dtype
        latents = G.vae.encode(x.to(dtype)).latent_dist.mean * G.vae.config.scaling_factor
        noise = torch.randn(latents.shape[1:], generator=torch.Generator().manual_seed(0))
        noise = noise.to(x.device, dtype).expand_as(latents)
        t = torch.full(
            (len(x),), round(JUDGE_LEVEL * G.scheduler.config.num_train_timesteps), dtype=torch.long, device=x.device
        )
        ids = G.tokenizer(
            [""], padding="max_length", max_length=G.tokenizer.model_max_length, truncation=True, return_tensors="pt"
        ).input_ids.to(x.device)
        empty = G.text_encoder(ids)[0].expand(len(x), -1, -1)
        predicted = G.unet(G.scheduler.add_noise(latents, noise, t), t, encoder_hidden_states=empty).sample
        target = (
            noise if G.scheduler.config.prediction_type == "epsilon" else G.scheduler.get_velocity(latents, noise, t)
        )
        return (predicted.float() - target.float()).pow(2).mean((1, 2, 3))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.judge(x, labels)[0]


def build(num_classes: int, channels: int, image_size: int, gan: dict):
    """(the generator loaded from gan.pretrained, its judge); gan.steps > 0 is refused by archs.check_weights."""
    if gan["sd_mode"] == "img2img" and int(gan["sample_steps"] * gan["strength"]) < 1:
        raise GanaugError(
            f"gan.strength: img2img runs gan.strength x gan.sample_steps denoising steps, at least 1 "
            f"(got {gan['strength']} x {gan['sample_steps']})"
        )
    G = LatentDiffusionGenerator(num_classes, channels, image_size, gan, load_components(gan["pretrained"]))
    return G, LatentDenoisingJudge().bind(G)


def class_sources(labels: np.ndarray, num_classes: int, classes: list[str]) -> list[np.ndarray]:
    """The training rows of each class; a class with none is refused (img2img has nothing to start from)."""
    rows = [np.flatnonzero(labels == c) for c in range(num_classes)]
    empty = [classes[c] for c, r in enumerate(rows) if not len(r)]
    if empty:
        raise GanaugError(
            f"gan.sd_mode: img2img starts from real training images and class {empty[0]!r} has none "
            "(use gan.sd_mode: txt2img)"
        )
    return rows


def draw(G: LatentDiffusionGenerator, inputs: Inputs, labels: np.ndarray, seed: int, writer=None) -> np.ndarray | None:
    """Image r of class labels[r]: img2img from its class's training image (r // C) in turn (C classes), or txt2img
    from the class prompt, seeded by (seed, r) alone, so the images do not depend on generate.batch_size. Batches
    go to ``writer`` (with their source columns) when given, else are returned as uint8 N x H x W x C."""
    from ganaug.device import ShrinkOnOutOfMemory
    from ganaug.prompts import load_prompts

    train, num_classes, img2img = inputs.train, len(inputs.classes), G.mode == "img2img"
    prompts = load_prompts(inputs.classes)
    n = len(labels)
    if img2img:
        rows = class_sources(train.labels, num_classes, inputs.classes)
        source = np.array([rows[c][k % len(rows[c])] for k, c in zip(np.arange(n) // num_classes, labels)], np.int64)
    G.ready(inputs.device)
    pipe = G.pipeline(img2img)
    ids = np.asarray(train.ids)
    fit = ShrinkOnOutOfMemory("generate", "generate.batch_size")
    batch = min(inputs.params.generate.batch_size, MAX_BATCH)
    out = []
    with torch.inference_mode():
        for start in tqdm(range(0, n, batch), total=math.ceil(n / batch), desc=f"generate (sd {G.mode})", unit="batch"):
            r = np.arange(start, min(start + batch, n))

            def run(a, b, r=r):
                return G.generate(
                    pipe,
                    [prompts[c] for c in labels[r[a:b]]],
                    train.images[source[r[a:b]]] if img2img else None,
                    [image_seed(seed, i) for i in r[a:b]],
                )

            images = np.concatenate(fit.run(run, len(r)))
            if writer is None:
                out.append(images)
                continue
            more = {"source_ids": ids[source[r]], "source_labels": train.labels[source[r]]} if img2img else {}
            writer.write(images, labels[r], np.zeros((len(r), 0), np.float32), **more)
    return np.concatenate(out) if out else None


def evaluation_images(G: LatentDiffusionGenerator, inputs: Inputs, labels: np.ndarray, seed: int) -> np.ndarray:
    """train_gan's FID images: drawn as the pool's are (the class's real images in turn, or the prompt alone)."""
    return draw(G, inputs, np.asarray(labels, np.int64), seed)


def make_pool(G: LatentDiffusionGenerator, out_dir: Path, inputs: Inputs):
    """generate.pool_multiple x the real training set, balanced per class, classes interleaved (row r has class
    r % C, so any prefix is balanced): img2img variants of the class's training images in turn (each source
    ceil(per class / its class's count) times at most), or txt2img from the class prompt. Image r is seeded by
    (generate.seed, r) alone, so the pool is the same bytes whatever generate.batch_size."""
    from ganaug.gan.pool import per_class_count
    from ganaug.gan.pool_format import PoolWriter
    from ganaug.prompts import load_prompts

    cfg, train = inputs.params.generate, inputs.train
    if cfg.translate:
        raise GanaugError("generate.translate: gan.arch sd translates real images with gan.sd_mode: img2img")
    num_classes, img2img = len(inputs.classes), G.mode == "img2img"
    prompts = load_prompts(inputs.classes)
    per_class = per_class_count(inputs)
    n = per_class * num_classes
    labels = np.arange(n, dtype=np.int64) % num_classes
    shape = (G.image_size, G.image_size, G.channels)
    extra = {"source_ids": np.asarray(train.ids).dtype, "source_labels": np.int64} if img2img else {}
    writer = PoolWriter(out_dir, n, shape, 0, extra)
    draw(G, inputs, labels, cfg.seed, writer)
    meta = {
        **({"kind": "translation", "sources": len(train)} if img2img else {}),
        "per_class": per_class,
        "num_classes": num_classes,
        "shape": list(shape),
        "z_dim": 0,
        "seed": cfg.seed,
        "arch": inputs.arch,
        "pretrained": G.pretrained,  # its md5 is the generate stage's weights_md5 (inputs.about)
        "sd_mode": G.mode,
        **({"strength": G.strength} if img2img else {}),
        "guidance_scale": G.guidance_scale,
        "sample_steps": G.sample_steps,
        "prompts": prompts,
        **inputs.about,
    }
    how = (
        f"{per_class} per class: img2img from the {len(train)} real training images at strength {G.strength}"
        if img2img
        else f"{per_class} per class: txt2img from the class prompts"
    )
    return writer.close(meta), how


def sample_grid(G: LatentDiffusionGenerator, inputs: Inputs, title: str, path: Path) -> None:
    """A row per class, seeded by gan.seed: img2img, the class's first training image then GRID_VARIANTS
    variants of it; txt2img, GRID_VARIANTS images from the class prompt."""
    from ganaug.plots import image_grid
    from ganaug.prompts import load_prompts

    prompts, num_classes = load_prompts(inputs.classes), len(inputs.classes)
    img2img = G.mode == "img2img"
    first = [r[0] for r in class_sources(inputs.train.labels, num_classes, inputs.classes)] if img2img else []
    G.ready(inputs.device)
    pipe = G.pipeline(img2img)
    labels = np.repeat(np.arange(num_classes), GRID_VARIANTS)
    seeds = [image_seed(inputs.params.gan.seed, i) for i in range(len(labels))]
    with torch.inference_mode():
        images = np.concatenate(
            [
                G.generate(
                    pipe,
                    [prompts[c] for c in labels[start : start + MAX_BATCH]],
                    inputs.train.images[[first[c] for c in labels[start : start + MAX_BATCH]]] if img2img else None,
                    seeds[start : start + MAX_BATCH],
                )
                for start in range(0, len(labels), MAX_BATCH)
            ]
        )
    if img2img:  # each row starts with its source
        images, labels = (
            np.concatenate([inputs.train.images[first], images]),
            np.concatenate([np.arange(num_classes), labels]),
        )
        title = f"{title}\nleft: the real image; img2img at {G.strength}"
    image_grid(images, labels, inputs.classes, path, per_class=GRID_VARIANTS + img2img, title=title)
