"""CLIP from a local folder (clip.path): a transformers ``CLIPModel`` saved with ``save_pretrained``, its tokenizer
and, if saved, its image processor's config (only its normalisation is read). Never downloaded (ganaug.weights).

What ganaug uses it for: image features (the retrieval baseline's neighbours, and with score.features: clip the
features of FID, KID, diversity and the diverse sampler's coverage), and each image's zero-shot label over the class
prompts (prompts.yaml), with the margin of its own class over the best other (the clip sampler).

Images are uint8 N x H x W x C, as ganaug stores them: resized to the model's vision ``image_size`` (bicubic, square:
ganaug's images are square already, so CLIP's resize-then-centre-crop is this resize), gray repeated to RGB,
normalised with the saved processor's mean and std (else CLIP's standard ones)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ganaug import weights
from ganaug.device import autocast, pick_device
from ganaug.errors import GanaugError

KEY = "clip.path"
EXPECTED = "a transformers CLIPModel folder"
# the normalisation CLIP was trained with (OpenAI's), for a folder saved without an image processor config
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def pixel_values(images: torch.Tensor, size: int, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (or float in [0, 1]) B x C x H x W -> CLIP's input, float B x 3 x size x size."""
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[1] != 3:
        raise GanaugError(f"CLIP: images have {x.shape[1]} channels (expected 1 or 3)")
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    return (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


class Clip(torch.nn.Module):
    """A CLIPModel as an image feature extractor: uint8 B x C x H x W -> L2-normalised float32 image features (the
    custom-extractor contract of torchmetrics and of ganaug.metrics.features.ClassifierFeatures, so
    metrics.quality's FID, KID and diversity take it as they are), and ``features_and_logits``: the features and the
    zero-shot logits over the prompts given to ``set_prompts``. Work goes in pieces of ``batch_size`` images."""

    def __init__(self, model, tokenizer, mean, std, batch_size: int):
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.image_size = int(model.config.vision_config.image_size)
        self.num_features = int(model.config.projection_dim)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        self.register_buffer("text", torch.zeros(0, self.num_features))  # the prompts' features (set_prompts)

    @property
    def device(self) -> torch.device:
        return self.mean.device

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = []
        for start in range(0, len(images), self.batch_size):
            x = pixel_values(
                images[start : start + self.batch_size].to(self.device), self.image_size, self.mean, self.std
            )
            with autocast(self.device):
                out.append(self.model.get_image_features(pixel_values=x).pooler_output.float())
        feats = torch.cat(out) if out else torch.zeros(0, self.num_features, device=self.device)
        return F.normalize(feats, dim=-1)

    @torch.no_grad()
    def text_features(self, prompts: list[str]) -> torch.Tensor:
        """L2-normalised float32 features of each prompt."""
        limit = int(self.model.config.text_config.max_position_embeddings)
        tokens = self.tokenizer(prompts, padding=True, truncation=True, max_length=limit, return_tensors="pt")
        with autocast(self.device):
            feats = self.model.get_text_features(
                input_ids=tokens["input_ids"].to(self.device), attention_mask=tokens["attention_mask"].to(self.device)
            ).pooler_output.float()
        return F.normalize(feats, dim=-1)

    def set_prompts(self, prompts: list[str]) -> Clip:
        """The class prompts the zero-shot logits compare each image with (one per class, in class order)."""
        self.text = self.text_features(prompts)
        return self

    @torch.no_grad()
    def features_and_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Image features and zero-shot logits (CLIP's scaled cosine similarity with each class prompt)."""
        if not len(self.text):
            raise GanaugError("CLIP: zero-shot logits need the class prompts (set_prompts)")
        feats = self(images)
        return feats, self.model.logit_scale.exp().float() * feats @ self.text.T


def check_folder(path: str | Path) -> Path:
    """``path`` as a CLIP folder, or one line naming clip.path, the folder and what was expected."""
    folder = weights.local_folder(path, KEY, EXPECTED, "config.json")
    try:
        config = json.loads((folder / "config.json").read_text())
    except (ValueError, OSError) as err:
        raise GanaugError(f"{KEY}: {folder / 'config.json'}: unreadable ({err}; expected {EXPECTED})") from None
    kind = config.get("model_type") or config.get("_class_name") or "no model_type"
    if kind != "clip":
        raise GanaugError(f"{KEY}: {folder}: config.json is a {kind!r} config (expected {EXPECTED}, model_type 'clip')")
    return folder


def normalisation(folder: Path) -> tuple[list[float], list[float]]:
    """The saved image processor's mean and std, else CLIP's standard ones."""
    processor = folder / "preprocessor_config.json"
    if not processor.is_file():
        return list(CLIP_MEAN), list(CLIP_STD)
    config = json.loads(processor.read_text())
    mean, std = config.get("image_mean", CLIP_MEAN), config.get("image_std", CLIP_STD)
    if len(mean) != 3 or len(std) != 3:
        raise GanaugError(f"{KEY}: {processor}: image_mean and image_std need 3 values each (RGB)")
    return [float(m) for m in mean], [float(s) for s in std]


def load_clip(path: str | Path, batch_size: int, device: torch.device | None = None) -> Clip:
    """The CLIP model of a local folder, offline, on ``device`` (default: ganaug's device, CUDA when present)."""
    from transformers import AutoTokenizer, CLIPModel
    from transformers.utils import logging as hf_logging

    folder = check_folder(path)
    hf_logging.disable_progress_bar()  # a tiny model's loading bar would be most of a stage's output
    try:
        model = CLIPModel.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise GanaugError(f"{KEY}: {folder}: the model does not load ({reason}; expected {EXPECTED})") from None
    # without its files, AutoTokenizer would quietly make an empty tokenizer that maps every word to one token
    if not ((folder / "tokenizer.json").is_file() or (folder / "vocab.json").is_file()):
        raise GanaugError(
            f"{KEY}: {folder}: no usable tokenizer (no tokenizer.json or vocab.json; expected {EXPECTED} with its "
            "tokenizer saved beside it)"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, TypeError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise GanaugError(
            f"{KEY}: {folder}: no usable tokenizer ({reason}; expected {EXPECTED} with its tokenizer)"
        ) from None
    if len(tokenizer) > model.config.text_config.vocab_size:
        raise GanaugError(
            f"{KEY}: {folder}: its tokenizer has {len(tokenizer)} tokens but the text model only "
            f"{model.config.text_config.vocab_size} (expected {EXPECTED} with its own tokenizer)"
        )
    mean, std = normalisation(folder)
    return Clip(model, tokenizer, mean, std, batch_size).to(device or pick_device())


def _batches(images: np.ndarray, size: int, desc: str):
    from ganaug.sampling.scores import read_rows  # plain file reads of a memory-mapped array (bounded memory)

    for start in tqdm(range(0, len(images), size), desc=desc, unit="batch"):
        yield torch.from_numpy(read_rows(images, start, start + size)).permute(0, 3, 1, 2)


def image_features(clip: Clip, images: np.ndarray, desc: str = "CLIP features") -> np.ndarray:
    """L2-normalised float32 CLIP features of uint8 N x H x W x C images (a memory map is fine)."""
    out = [clip(batch).cpu().numpy() for batch in _batches(images, clip.batch_size, desc)]
    return np.concatenate(out) if out else np.zeros((0, clip.num_features), np.float32)


def text_features(clip: Clip, prompts: list[str]) -> np.ndarray:
    """L2-normalised float32 CLIP features of each prompt."""
    return clip.text_features(prompts).cpu().numpy()


def zero_shot_logits(clip: Clip, images: np.ndarray, prompts: list[str], desc: str = "CLIP zero-shot") -> np.ndarray:
    """Float32 N x classes: each image's zero-shot logit for each class prompt (ganaug.prompts.load_prompts)."""
    clip.set_prompts(prompts)
    out = [clip.features_and_logits(batch)[1].cpu().numpy() for batch in _batches(images, clip.batch_size, desc)]
    return np.concatenate(out) if out else np.zeros((0, len(prompts)), np.float32)


def zero_shot_labels(clip: Clip, images: np.ndarray, prompts: list[str]) -> np.ndarray:
    """Each image's zero-shot class: the prompt CLIP finds most similar."""
    return zero_shot_logits(clip, images, prompts).argmax(1)
