"""A tiny Stable Diffusion pipeline, trained in seconds on a CPU and saved with ``save_pretrained`` in the layout
of a real one (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/): what the tests and the
end-to-end check load as ``gan.pretrained`` for gan.arch sd. It knows only the images it was trained on.

- vae: an AutoencoderKL (2 blocks, latents at half the image size, 4 channels) trained as an autoencoder
  (reconstruction + a small KL term), its latents then scaled to unit variance as SD's 0.18215 does;
- text encoder: a 1-layer CLIPTextModel over ganaug.tiny.tokenizer's vocabulary of the class prompts;
- unet: a UNet2DConditionModel with cross-attention on the text encoder's states, trained with the text encoder
  as SD is (noise prediction on VAE latents, SD's scaled-linear schedule), the prompt dropped to "" one time in
  ten so that classifier-free guidance has an unconditional model to push away from;
- scheduler: DDIM with SD's schedule.

    python -m ganaug.tiny.sd --out weights/tiny-sd   # from data/prepared's train split and prompts.yaml
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

# Stable Diffusion 1.x's noise schedule (its scheduler_config.json)
SD_SCHEDULE = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
}
WIDTH = 32  # text encoder width = the UNet's cross-attention width
MAX_TOKENS = 16  # the prompt length the text encoder takes (CLIP's is 77)
UNCONDITIONAL = 0.1  # share of training prompts dropped to "" (classifier-free guidance)


def rgb(images: np.ndarray, size: int) -> torch.Tensor:
    """uint8 N x H x W x C -> float N x 3 x size x size in [-1, 1]."""
    from ganaug.data.prepare import resize
    from ganaug.gan.pixels import from_uint8

    return from_uint8(resize(images, size, 3))


def train_vae(x: torch.Tensor, steps: int, batch_size: int, gen: torch.Generator):
    from diffusers import AutoencoderKL

    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(8, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=x.shape[-1],
    )
    opt = torch.optim.Adam(vae.parameters(), lr=2e-3, foreach=True)
    for _ in tqdm(range(steps), desc="tiny sd: vae", unit="step"):
        batch = x[torch.randint(len(x), (batch_size,), generator=gen)]
        posterior = vae.encode(batch).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=gen)
        loss = F.mse_loss(vae.decode(z).sample, batch) + 1e-5 * posterior.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    vae.eval().requires_grad_(False)
    with torch.no_grad():
        mean = torch.cat([vae.encode(x[i : i + 256]).latent_dist.mean for i in range(0, len(x), 256)])
    vae.register_to_config(scaling_factor=float(1 / mean.std()))  # unit-variance latents, as SD's 0.18215
    return vae


def train_tiny_sd(
    images: np.ndarray,
    labels: np.ndarray,
    prompts: list[str],
    out: Path,
    size: int = 16,
    vae_steps: int = 150,
    unet_steps: int = 600,
    batch_size: int = 16,
    seed: int = 0,
) -> Path:
    """Train the tiny pipeline on ``images`` (uint8 N x H x W x C, any size and channels, resized to ``size`` RGB)
    with ``prompts[label]`` as each image's text, and save it to ``out``; deterministic for a seed."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from ganaug.tiny.tokenizer import tiny_tokenizer

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x = rgb(images, size)
    vae = train_vae(x, vae_steps, batch_size, gen)

    tokenizer = tiny_tokenizer(prompts)
    tokenizer.model_max_length = MAX_TOKENS
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=WIDTH,
            intermediate_size=2 * WIDTH,
            num_hidden_layers=1,  # one layer learns the class conditioning sooner than two
            num_attention_heads=2,
            max_position_embeddings=MAX_TOKENS,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    unet = UNet2DConditionModel(
        sample_size=size // 2,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(16, 32),
        # attention only at the lower resolution (and the middle): 4 x 4 latents, cheap on a CPU
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=WIDTH,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    scheduler = DDIMScheduler(**SD_SCHEDULE)

    with torch.no_grad():
        posterior = [vae.encode(x[i : i + 256]).latent_dist for i in range(0, len(x), 256)]
        mean = torch.cat([p.mean for p in posterior]) * vae.config.scaling_factor
        std = torch.cat([p.std for p in posterior]) * vae.config.scaling_factor
    # one row of token ids per class prompt, and the empty prompt's last
    ids = tokenizer([*prompts, ""], padding="max_length", max_length=MAX_TOKENS, truncation=True, return_tensors="pt")
    ids = ids.input_ids
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    params = [*unet.parameters(), *text_encoder.parameters()]
    opt = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.0, foreach=True)
    alphas = scheduler.alphas_cumprod
    for _ in tqdm(range(unet_steps), desc="tiny sd: unet", unit="step"):
        rows = torch.randint(len(x), (batch_size,), generator=gen)
        z0 = mean[rows] + std[rows] * torch.randn(mean[rows].shape, generator=gen)
        text = torch.where(torch.rand(batch_size, generator=gen) < UNCONDITIONAL, len(prompts), labels[rows])
        t = torch.randint(len(alphas), (batch_size,), generator=gen)
        noise = torch.randn(z0.shape, generator=gen)
        a = alphas[t].view(-1, 1, 1, 1)
        noisy = a.sqrt() * z0 + (1 - a).sqrt() * noise
        predicted = unet(noisy, t, encoder_hidden_states=text_encoder(ids[text])[0]).sample
        loss = F.mse_loss(predicted, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        unet=unet.eval(),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(out)
    return Path(out)


def main(argv: list[str] | None = None) -> None:
    from ganaug import paths
    from ganaug.data.store import load_classes, load_split
    from ganaug.prompts import load_prompts

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the pipeline folder to write (e.g. weights/tiny-sd)")
    parser.add_argument("--unet-steps", type=int, default=2000)
    parser.add_argument("--vae-steps", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    train = load_split(paths.PREPARED / "train.npz")
    prompts = load_prompts(load_classes(paths.PREPARED)["classes"])
    train_tiny_sd(
        train.images,
        train.labels,
        prompts,
        args.out,
        vae_steps=args.vae_steps,
        unet_steps=args.unet_steps,
        seed=args.seed,
    )
    print(f"tiny sd: {len(train)} images, {len(prompts)} prompts -> {args.out}")


if __name__ == "__main__":
    main()
