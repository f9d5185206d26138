"""A tiny CLIP (transformers' CLIPModel: a 2-layer ViT on 32 px images in 8 px patches, a 1-layer text transformer,
width 64), trained contrastively in seconds on labelled images with their class prompts as captions, and saved with
save_pretrained beside its tokenizer (ganaug.tiny.tokenizer) and image processor config: a folder clip.path can name.

The loss is CLIP's symmetric InfoNCE over a batch's image-caption pairs; since a batch holds several images of one
class, and so one caption several times, every pair of an image with a caption of its class counts as a positive
(the targets spread evenly over them), not only the pair it was drawn as.

    python -m ganaug.tiny.clip --out weights/tiny-clip   # on data/prepared's train split, prompts from prompts.yaml
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

WIDTH = 64
IMAGE_SIZE, PATCH = 32, 8
STEPS, BATCH, LR = 300, 64, 2e-3  # ~90 % zero-shot accuracy on held-out digits in ~10 s of a 2-core CPU


def tiny_config(tokenizer):
    from transformers import CLIPConfig

    ids = {k: getattr(tokenizer, k) for k in ("bos_token_id", "eos_token_id", "pad_token_id")}
    text = dict(
        vocab_size=len(tokenizer),
        hidden_size=WIDTH,
        intermediate_size=2 * WIDTH,
        num_hidden_layers=1,
        num_attention_heads=4,
        max_position_embeddings=32,
        **ids,  # the text tower pools at the tokenizer's end-of-text token
    )
    vision = dict(
        image_size=IMAGE_SIZE,
        patch_size=PATCH,
        hidden_size=WIDTH,
        intermediate_size=2 * WIDTH,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_channels=3,
    )
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=WIDTH)


def train_tiny_clip(
    images: np.ndarray,
    labels: np.ndarray,
    prompts: list[str],
    out: Path,
    steps: int = STEPS,
    seed: int = 0,
) -> Path:
    """Train on uint8 N x H x W x C ``images`` captioned with ``prompts[label]``; save the model, tokenizer and
    image processor config in ``out``. Same inputs and seed -> the same weights (on the CPU)."""
    import torch
    import torch.nn.functional as F
    from tqdm import tqdm
    from transformers import CLIPImageProcessor, CLIPModel

    from ganaug.clip import pixel_values
    from ganaug.tiny.tokenizer import tiny_tokenizer

    torch.manual_seed(seed)
    tokenizer = tiny_tokenizer(prompts)
    model = CLIPModel(tiny_config(tokenizer)).train()
    raw = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    # the processor saved beside the model normalises with the training images' own statistics
    x01 = pixel_values(raw, IMAGE_SIZE, torch.zeros(3), torch.ones(3))
    mean, std = x01.mean((0, 2, 3)), x01.std((0, 2, 3)).clamp_min(1e-3)
    x = (x01 - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
    y = torch.from_numpy(np.asarray(labels, np.int64))
    tokens = tokenizer(prompts, padding=True, return_tensors="pt")
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    draw = torch.Generator().manual_seed(seed)
    for _ in tqdm(range(steps), desc="tiny CLIP", unit="step"):
        idx = torch.randint(0, len(x), (min(BATCH, len(x)),), generator=draw)
        img = F.normalize(model.get_image_features(pixel_values=x[idx]).pooler_output, dim=-1)
        txt = F.normalize(model.get_text_features(**tokens).pooler_output, dim=-1)[y[idx]]  # each image's caption
        logits = model.logit_scale.exp() * img @ txt.T
        same = (y[idx][:, None] == y[idx][None]).float()
        target = same / same.sum(1, keepdim=True)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = Path(out)
    model.eval().save_pretrained(out)
    tokenizer.save_pretrained(out)
    CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        image_mean=mean.tolist(),
        image_std=std.tolist(),
    ).save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> None:
    from ganaug import paths
    from ganaug.data.store import load_classes, load_split
    from ganaug.prompts import load_prompts

    parser = argparse.ArgumentParser(prog="python -m ganaug.tiny.clip", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the folder to save it in (then clip.path: it)")
    parser.add_argument("--steps", type=int, default=STEPS, help="contrastive training steps")
    args = parser.parse_args(argv)
    classes = load_classes(paths.PREPARED)["classes"]
    train = load_split(paths.PREPARED / "train.npz")
    train_tiny_clip(train.images, train.labels, load_prompts(classes), args.out, args.steps)
    print(f"tiny CLIP: trained on {len(train.labels)} images of {paths.PREPARED}, saved in {args.out}")


if __name__ == "__main__":
    from ganaug.errors import GanaugError

    try:
        main()
    except GanaugError as err:
        raise SystemExit(f"ganaug: error: {err}") from None
