"""The actor-critic sampler of paper 000: a policy network looks at a synthetic image and decides
keep or drop; its reward comes from a child network trained on a small real subset plus the kept
images: +1 when the child's validation accuracy beats the mean of the last ``window`` episodes,
else -1. A critic (a value head on the episode's mean policy features) is the baseline that turns
the reward into an advantage. Applied to the whole pool, the policy's keep probability is a score
(``rl_keep``) and ``keep_prob > 0.5`` is the subset size it chooses on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm


class SmallCNN(nn.Module):
    """3 conv + 2 fully connected layers: the paper's policy, and (same shape) its child network."""

    def __init__(self, channels: int, outputs: int, width: int = 16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
            nn.Linear(4 * width * 16, 64), nn.ReLU(),
        )
        self.head = nn.Linear(64, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def to_input(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 B x H x W x C -> float B x C x H x W in [-1, 1]."""
    return torch.from_numpy(np.array(images)).to(device).permute(0, 3, 1, 2).float().div(127.5).sub(1)  # a writable copy


def reward(score: float, history: list[float], window: int = 5) -> float:
    """+1 if ``score`` beats the mean of the last ``window`` scores, else -1; 0 with no history yet."""
    if not history:
        return 0.0
    return 1.0 if score > float(np.mean(history[-window:])) else -1.0


def child_score(x: torch.Tensor, y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor, num_classes: int,
                epochs: int, lr: float, seed: int, batch_size: int = 32) -> float:
    """Train a fresh child network on (x, y); its validation accuracy."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    child = SmallCNN(x.shape[1], num_classes).to(x.device)
    opt = torch.optim.Adam(child.parameters(), lr=lr)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen).to(x.device)
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            loss = F.cross_entropy(child(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    child.eval()
    with torch.no_grad():
        pred = torch.cat([child(val_x[s : s + 512]).argmax(1) for s in range(0, len(val_x), 512)])
    return (pred == val_y).float().mean().item()


@dataclass
class Policy:
    actor: SmallCNN  # image -> keep logit
    critic: nn.Linear  # mean actor features of an episode -> expected reward


def train_policy(pool_images: np.ndarray, pool_labels: np.ndarray, real_images: np.ndarray, real_labels: np.ndarray,
                 val_images: np.ndarray, val_labels: np.ndarray, num_classes: int, cfg, device: torch.device,
                 on_episode=None) -> tuple[Policy, list[dict]]:
    """REINFORCE with a critic baseline over ``cfg.episodes`` episodes; returns the policy and one row per episode."""
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    action_gen = torch.Generator(device=device).manual_seed(cfg.seed)
    # the child's small real subset: the first real_per_class of each class in a seeded order
    order = rng.permutation(len(real_labels))
    subset = np.concatenate([order[real_labels[order] == c][: cfg.real_per_class] for c in range(num_classes)])
    real_x, real_y = to_input(real_images[np.sort(subset)], device), torch.from_numpy(real_labels[np.sort(subset)]).to(device)
    val_x, val_y = to_input(val_images, device), torch.from_numpy(val_labels).to(device)
    by_class = [np.flatnonzero(pool_labels == c) for c in range(num_classes)]

    policy = Policy(SmallCNN(pool_images.shape[-1], 1).to(device), nn.Linear(64, 1).to(device))
    opt = torch.optim.Adam([*policy.actor.parameters(), *policy.critic.parameters()], lr=cfg.policy_lr)
    scores: list[float] = []
    history = []
    for episode in (bar := tqdm(range(1, cfg.episodes + 1), desc="rl_policy", unit="episode")):
        cand = np.sort(np.concatenate([rng.choice(ids, min(cfg.candidates_per_class, len(ids)), replace=False) for ids in by_class if len(ids)]))
        x, y = to_input(pool_images[cand], device), torch.from_numpy(np.asarray(pool_labels[cand], np.int64)).to(device)
        policy.actor.train()
        feats = policy.actor.features(x)
        keep_logit = policy.actor.head(feats).squeeze(1)
        dist = torch.distributions.Bernoulli(logits=keep_logit)
        action = torch.bernoulli(torch.sigmoid(keep_logit).detach(), generator=action_gen)
        kept = action.bool()
        score = child_score(torch.cat([real_x, x[kept].detach()]), torch.cat([real_y, y[kept]]), val_x, val_y,
                            num_classes, cfg.child_epochs, cfg.child_lr, seed=cfg.seed)  # same init every episode: only the data differs
        r = reward(score, scores, cfg.window)
        scores.append(score)
        value = policy.critic(feats.detach().mean(0)).squeeze()
        advantage = r - value.detach()
        loss = (-(advantage * dist.log_prob(action).mean()) - cfg.entropy_weight * dist.entropy().mean()
                + F.mse_loss(value, torch.tensor(r, device=device)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        row = {"episode": episode, "reward": r, "child_score": score, "kept_fraction": kept.float().mean().item(),
               "keep_prob": torch.sigmoid(keep_logit).mean().item(), "value": value.item()}
        history.append(row)
        bar.set_postfix(score=f"{score:.3f}", kept=f"{row['kept_fraction']:.2f}")
        if on_episode is not None:
            on_episode(row)
    return policy, history


@torch.inference_mode()
def keep_probabilities(policy: Policy, images: np.ndarray, device: torch.device, batch_size: int = 1000) -> np.ndarray:
    """The policy's keep probability for every image (memory-mapped input is read batch by batch)."""
    policy.actor.eval()
    out = [torch.sigmoid(policy.actor(to_input(images[s : s + batch_size], device))).squeeze(1).float().cpu().numpy()
           for s in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.empty(0, np.float32)
