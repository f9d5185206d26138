"""FID and KID (torchmetrics, in the classifier's feature space), intra-class diversity and label
agreement of generated images against a real reference set."""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from ganaug.data.splits import stratified_take
from ganaug.metrics.features import ClassifierFeatures


def mean_pairwise_distance(features: torch.Tensor, max_n: int = 256) -> float:
    f = features[:max_n].double()
    if len(f) < 2:
        return float("nan")
    d = torch.cdist(f, f)
    return (d.sum() / (len(f) * (len(f) - 1))).item()


def diversity_ratio(fake_feats, fake_labels, real_feats, real_labels, num_classes: int) -> tuple[float, list[float]]:
    """Per class: mean pairwise feature distance of synthetic / of real images; the mean over classes.
    1.0 = as varied as the real class; a collapsed class tends to 0."""
    ratios = []
    for c in range(num_classes):
        real = mean_pairwise_distance(real_feats[real_labels == c])
        fake = mean_pairwise_distance(fake_feats[fake_labels == c])
        ratios.append(fake / real if real > 0 else float("nan"))
    return float(np.nanmean(ratios)), ratios


def balanced_draw(labels: np.ndarray, count: int, num_classes: int, seed: int) -> np.ndarray:
    """A seeded class-balanced draw of ``count`` images (all of a class that has fewer): what FID is
    measured on, real or generated, since FID is biased by sample size (gan.eval_samples everywhere)."""
    per_class = [count // num_classes] * num_classes
    return stratified_take(labels, np.arange(len(labels)), per_class, np.random.default_rng(seed))


class _Precomputed(torch.nn.Module):
    """Features are extracted once per image by us; torchmetrics receives them as its "images"."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


class QualityEvaluator:
    """Holds the real reference (features computed once) and scores batches of generated images."""

    def __init__(
        self,
        extractor: ClassifierFeatures,
        real_images: np.ndarray,
        real_labels: np.ndarray,
        num_classes: int,
        device: torch.device,
        fake_count: int,
        batch_size: int = 500,
    ):
        self.extractor = extractor.to(device).eval()
        self.device, self.batch_size, self.num_classes = device, batch_size, num_classes
        identity = _Precomputed(extractor.num_features)
        self.fid = FrechetInceptionDistance(feature=identity, reset_real_features=False)
        self.subset_size = min(500, len(real_images), fake_count)
        self.kid = KernelInceptionDistance(
            feature=identity, reset_real_features=False, subsets=50, subset_size=self.subset_size
        )
        self.real_feats = torch.cat([self.extractor(batch).cpu() for batch in self._batches(real_images)])
        self.real_labels = torch.from_numpy(real_labels)
        self.fid.update(self.real_feats, real=True)
        self.kid.update(self.real_feats, real=True)

    @torch.no_grad()
    def predict(self, images: np.ndarray) -> np.ndarray:
        """The classifier's predicted class of each uint8 N x H x W x C image."""
        return torch.cat(
            [self.extractor.features_and_logits(b)[1].argmax(1).cpu() for b in self._batches(images)]
        ).numpy()

    def _batches(self, images: np.ndarray):
        for start in range(0, len(images), self.batch_size):
            yield torch.from_numpy(images[start : start + self.batch_size]).permute(0, 3, 1, 2).to(self.device)

    def evaluate(self, fake_images: np.ndarray, fake_labels: np.ndarray | None) -> dict:
        """fake_images: uint8 N x H x W x C. ``fake_labels`` None (an unconditional generator): the classifier's
        predictions stand in for the labels (per-class diversity by predicted class) and label agreement is NaN."""
        self.fid.reset()
        self.kid.reset()
        feats, preds = [], []
        for batch in self._batches(fake_images):
            f, logits = self.extractor.features_and_logits(batch)
            feats.append(f.float().cpu())
            preds.append(logits.argmax(1).cpu())
        feats, preds = torch.cat(feats), torch.cat(preds)
        self.fid.update(feats, real=False)
        self.kid.update(feats, real=False)
        labels = preds if fake_labels is None else torch.from_numpy(fake_labels)
        self.kid.subset_size = min(self.subset_size, len(feats))  # a small test set's real floor draws fewer images
        kid_mean, _ = self.kid.compute()
        ratio, per_class = diversity_ratio(feats, labels, self.real_feats, self.real_labels, self.num_classes)
        return {
            "fid": float(self.fid.compute()),
            "kid": float(kid_mean),
            "diversity_ratio": ratio,
            "label_agreement": float("nan") if fake_labels is None else float((preds == labels).float().mean()),
            "diversity_per_class": per_class,
        }
