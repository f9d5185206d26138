"""The real-only classifier as a feature extractor (there are no Inception weights offline)."""

from __future__ import annotations

import torch
import torch.nn as nn

from ganaug.classify.normalize import Normalizer


class ClassifierFeatures(nn.Module):
    """uint8 B x C x H x W -> penultimate features (torchmetrics' custom-extractor contract),
    plus ``logits()`` on the same input for label agreement and confidence."""

    def __init__(self, model: nn.Module, norm: Normalizer):
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.num_features = int(model.num_features)
        self.register_buffer("mean", torch.tensor(norm.mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(norm.std).view(1, -1, 1, 1))

    def _input(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255 if images.dtype == torch.uint8 else images
        return (x - self.mean) / self.std

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Differentiable (for latent projection); images uint8 or float in [0, 1]."""
        self.model.eval()
        return self.model.forward_head(self.model.forward_features(self._input(images)), pre_logits=True)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)

    @torch.no_grad()
    def features_and_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.features(images)
        return feats, self.model.get_classifier()(feats)


def load_feature_extractor(model_dir) -> tuple[ClassifierFeatures, dict]:
    from ganaug.classify.models import load_classifier

    model, config = load_classifier(model_dir)
    return ClassifierFeatures(model, Normalizer(config["mean"], config["std"])), config
