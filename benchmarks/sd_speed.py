"""Generation speed (images/s) of gan.arch sd's img2img (ganaug.gan.latent_diffusion, diffusers'
StableDiffusionImg2ImgPipeline underneath) beside a plain-PyTorch reference: the bare UNet forward pass at the
same shape (the guided batch: 2 x images rows), so the ratio shows what the pipeline adds per denoising step.
Run by hand, not a test:

    python benchmarks/sd_speed.py                     # the tiny pipeline (ganaug.tiny.sd, trained for a few steps)
    python benchmarks/sd_speed.py --full --steps 2    # a full-size-config SD 1.5 pipeline with random weights:
                                                      # UNet 860M, VAE 4 blocks 128-512, CLIP text 12 x 768; 512 px

A pipeline run of k denoising steps costs fixed + k x per_step (fixed: the prompt's text encoding, the VAE
encoding of the sources and decoding of the results). Both are measured from two timed runs, of 1 and 1 + --steps
steps (after an untimed warm-up run; the fastest of --repeat runs each), and extrapolated to an image at
gan.sample_steps x gan.strength steps (the steps img2img runs), from params.yaml unless given. Uses CUDA (fp16)
when present, else the CPU (fp32). On a busy machine the tiny pipeline's few milliseconds per step drown in
noise: give it more --steps and --repeat.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ganaug.device import pick_device
from ganaug.gan.latent_diffusion import LatentDiffusionGenerator, load_components
from ganaug.params import load_params

PROMPTS = [f"a photo of a {c}" for c in ("cat", "dog")]


def full_size_parts() -> dict:
    """SD 1.5's architecture (its published configs) with random weights: nothing is downloaded."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from ganaug.tiny.sd import SD_SCHEDULE
    from ganaug.tiny.tokenizer import tiny_tokenizer

    tokenizer = tiny_tokenizer(PROMPTS)  # CLIP's 49k vocabulary cannot be fetched; tokenizing is not what is timed
    tokenizer.model_max_length = 77
    return {
        "unet": UNet2DConditionModel(sample_size=64, cross_attention_dim=768),  # the rest: diffusers' defaults = SD's
        "vae": AutoencoderKL(
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=2,
            latent_channels=4,
            sample_size=512,
        ),
        "text_encoder": CLIPTextModel(
            CLIPTextConfig(
                vocab_size=49408,
                hidden_size=768,
                intermediate_size=3072,
                num_hidden_layers=12,
                num_attention_heads=12,
                max_position_embeddings=77,
                hidden_act="quick_gelu",
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        ),
        "tokenizer": tokenizer,
        "scheduler": DDIMScheduler(**SD_SCHEDULE),
    }


def tiny_parts(folder: Path | None) -> dict:
    if folder is None:
        from ganaug.tiny.sd import train_tiny_sd

        rng = np.random.default_rng(0)
        folder = Path(tempfile.mkdtemp()) / "tiny-sd"  # a few steps: speed does not depend on what it learned
        train_tiny_sd(
            rng.integers(0, 256, (32, 16, 16, 1), np.uint8),
            np.arange(32) % 2,
            PROMPTS,
            folder,
            vae_steps=5,
            unet_steps=5,
        )
    return load_components(folder)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def pipeline_seconds(G, sources: np.ndarray, steps: int, device) -> float:
    """One img2img run over ``sources`` of exactly ``steps`` denoising steps (strength 1 runs all of them)."""
    G.sample_steps, G.strength = steps, 1.0
    pipe = G.pipeline(img2img=True)
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(len(sources))]
    return timed(lambda: G.generate(pipe, prompts, sources, list(range(len(sources)))), device)


@torch.inference_mode()
def unet_seconds(G, rows: int, steps: int, device) -> float:
    """``steps`` bare UNet forward passes at ``rows`` latents (the guided batch), per pass."""
    latents = torch.randn(rows, G.unet.config.in_channels, G.unet.config.sample_size, G.unet.config.sample_size)
    latents = latents.to(device, G.unet.dtype)
    states = torch.randn(rows, G.tokenizer.model_max_length, G.unet.config.cross_attention_dim)
    states = states.to(device, G.unet.dtype)
    t = torch.full((rows,), 500, device=device)
    G.unet(latents, t, encoder_hidden_states=states)  # warm-up
    return timed(lambda: [G.unet(latents, t, encoder_hidden_states=states) for _ in range(steps)], device) / steps


def main() -> None:
    cfg = load_params().gan
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the full-size-config pipeline (random weights, 512 px)")
    parser.add_argument("--tiny", type=Path, help="a tiny pipeline folder to time (default: one trained here)")
    parser.add_argument("--steps", type=int, default=2, help="denoising steps timed beyond the first")
    parser.add_argument("--batch", type=int, default=1, help="images per pipeline call")
    parser.add_argument("--repeat", type=int, help="timed runs of each length, the fastest kept (1 --full, else 3)")
    parser.add_argument("--sample-steps", type=int, default=cfg.sample_steps)
    parser.add_argument("--strength", type=float, default=cfg.strength)
    parser.add_argument("--guidance-scale", type=float, default=cfg.guidance_scale)
    args = parser.parse_args()

    device = pick_device()
    parts = full_size_parts() if args.full else tiny_parts(args.tiny)
    gan = {"pretrained": "(in memory)" if args.full else str(args.tiny or "(tiny, trained here)"), "sd_mode": "img2img"}
    gan.update(strength=1.0, guidance_scale=args.guidance_scale, sample_steps=1)
    G = LatentDiffusionGenerator(2, 3, 32, gan, parts).ready(device)
    sources = np.random.default_rng(0).integers(0, 256, (args.batch, 32, 32, 3), np.uint8)
    params = sum(p.numel() for p in G.unet.parameters())
    print(
        f"{'full-size config' if args.full else 'tiny'}: UNet {params / 1e6:.1f}M parameters, {G.native} px, "
        f"{device} {G.unet.dtype}, batch {args.batch}, guidance {args.guidance_scale}"
    )

    pipeline_seconds(G, sources, 1, device)  # warm-up
    repeat = args.repeat or (1 if args.full else 3)
    one = min(pipeline_seconds(G, sources, 1, device) for _ in range(repeat))
    more = min(pipeline_seconds(G, sources, 1 + args.steps, device) for _ in range(repeat))
    per_step = (more - one) / args.steps
    if per_step <= 0:
        raise SystemExit(
            f"timings too noisy ({one:.3f} s for 1 step, {more:.3f} s for {1 + args.steps}): raise --steps"
        )
    fixed = max(one - per_step, 0.0)
    guided = args.guidance_scale > 1  # classifier-free guidance doubles the UNet's rows
    bare = unet_seconds(G, args.batch * (2 if guided else 1), args.steps, device)
    run = int(args.sample_steps * args.strength)
    per_image = (fixed + run * per_step) / args.batch
    print(f"  pipeline: {per_step:.3f} s per denoising step, {fixed:.3f} s fixed (text, VAE encode + decode)")
    print(f"  bare UNet forward at the same rows: {bare:.3f} s per step; pipeline / bare = {per_step / bare:.2f}")
    print(
        f"  per image at gan.sample_steps {args.sample_steps} x strength {args.strength} = {run} steps: "
        f"{per_image:.3f} s -> {1 / per_image:.2f} images/s"
    )


if __name__ == "__main__":
    main()
