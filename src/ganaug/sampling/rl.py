"""The RL sampler: an actor-critic agent, after Bhattarai et al. (2020), that learns which synthetic images to keep.

The policy (``Actor``) reads an image with its target label and gives a keep probability. Each episode draws a
few candidates per class and ``rollouts`` keep/drop vectors for them; one child network per vector trains a fixed
number of steps on a small real subset plus the kept candidates, from the episode's shared seed, and is scored on
validation. A rollout's reward is its score against the mean of the episode's other rollouts (the critic's value,
measured), and each candidate's advantage is the mean reward of the rollouts that kept it minus that of those that
dropped it. How this differs from the paper, and why: docs/methods.md (the RL sampler).

Applied to the whole pool, the keep probability is a score (``rl_keep``, the ``rl`` sampler: top-K
per class) and ``keep_prob > 0.5`` is the subset the agent chooses on its own (the ``own`` mode).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from ganaug.gan.pixels import from_uint8
from ganaug.sampling.samplers import KEEP_THRESHOLD  # the own subset: keep probability above it


class SmallCNN(nn.Module):
    """3 conv + 2 fully connected layers: the paper's policy, and (same shape) its child network."""

    def __init__(self, channels: int, outputs: int, width: int = 16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 4 * width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(4 * width * 16, 64),
            nn.ReLU(),
        )
        self.head = nn.Linear(64, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def to_input(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 B x H x W x C -> float B x C x H x W in [-1, 1]."""
    return from_uint8(torch.from_numpy(np.array(images)).to(device))  # a writable copy, converted on the device


class Actor(nn.Module):
    """The policy: the paper's 3 conv + 2 FC network reads the image as class evidence, log p(label | image),
    and the keep logit is ``bias + scale * (evidence - center)``. ``center`` is the mean evidence of
    the candidates (a running mean, like batch norm's): were it 0, a reward for keeping *more* would
    leak into ``scale`` whenever the mean evidence is not 0, instead of into ``bias`` only. ``scale``
    starts at 0, so the untrained policy keeps every image with probability 1/2: whether and how class
    evidence matters, and the network itself, are learnt from the reward."""

    def __init__(self, channels: int, num_classes: int, momentum: float = 0.1):
        super().__init__()
        self.net = SmallCNN(channels, num_classes)
        self.scale = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(()))
        self.register_buffer("center", torch.zeros(()))
        self.register_buffer("center_seen", torch.zeros(()))  # 0 until the first training batch
        self.momentum = momentum

    def evidence(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """log p(label | image) under the actor's network."""
        return self.net(x).log_softmax(1).gather(1, y[:, None]).squeeze(1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        evidence = self.evidence(x, y)
        if self.training:
            mean = evidence.detach().mean()
            with torch.no_grad():
                self.center.copy_(
                    mean if self.center_seen == 0 else (1 - self.momentum) * self.center + self.momentum * mean
                )
                self.center_seen.fill_(1)
            center = mean
        else:
            center = self.center
        return self.bias + self.scale * (evidence - center)


def keep_logits(actor: Actor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The actor's keep logit of each image for its own (target) label."""
    return actor(x, y)


def rollout_rewards(scores: np.ndarray, kind: str = "sign") -> np.ndarray:
    """Per rollout, against the mean of the episode's other rollouts (the threshold): the paper's
    +1/-1 (``sign``), or the score difference itself (``difference``); all 0 when every child scored the same."""
    scores = np.asarray(scores, np.float64)
    if len(scores) < 2 or np.ptp(scores) == 0:
        return np.zeros(len(scores))
    others = (scores.sum() - scores) / (len(scores) - 1)
    return np.where(scores > others, 1.0, -1.0) if kind == "sign" else scores - others


def image_advantages(actions: np.ndarray, rewards: np.ndarray) -> np.ndarray:
    """Per candidate: mean reward of the rollouts that kept it minus that of the rollouts that
    dropped it (``actions``: rollouts x candidates, 0/1); 0 when every rollout did the same."""
    actions = np.asarray(actions, np.float64)
    kept = actions.sum(0)
    dropped = len(actions) - kept
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_kept = (rewards @ actions) / kept
        mean_dropped = (rewards @ (1 - actions)) / dropped
    return np.where((kept > 0) & (dropped > 0), mean_kept - mean_dropped, 0.0)


def fit_small(
    net: SmallCNN, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float, seed: int, batch_size: int = 32
) -> SmallCNN:
    """``steps`` Adam steps on batches drawn uniformly from (x, y): a fixed budget, whatever len(x)."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    for _ in range(steps):
        idx = torch.randint(len(x), (batch_size,), generator=gen).to(x.device)
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net


def child_score(
    x: torch.Tensor,
    y: torch.Tensor,
    val_x: torch.Tensor,
    val_y: torch.Tensor,
    num_classes: int,
    steps: int,
    lr: float,
    seed: int,
    batch_size: int = 32,
) -> float:
    """Train a fresh child network (init and batch draws seeded by ``seed``) for ``steps`` optimiser
    steps on (x, y); its validation accuracy."""
    torch.manual_seed(seed)
    child = fit_small(SmallCNN(x.shape[1], num_classes).to(x.device), x, y, steps, lr, seed, batch_size)
    child.eval()
    with torch.no_grad():
        pred = torch.cat([child(val_x[s : s + 512]).argmax(1) for s in range(0, len(val_x), 512)])
    return (pred == val_y).float().mean().item()


def real_subset(labels: np.ndarray, per_class: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """The child's small real subset: the first ``per_class`` of each class in a seeded order."""
    order = rng.permutation(len(labels))
    return np.sort(np.concatenate([order[labels[order] == c][:per_class] for c in range(num_classes)]))


@dataclass(frozen=True)
class Children:
    """What every child network shares: the small real subset it trains on, the validation set that scores it,
    and its training budget, on the device."""

    real_x: torch.Tensor
    real_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    num_classes: int
    steps: int
    lr: float

    @classmethod
    def draw(cls, real_images, real_labels, val_images, val_labels, num_classes: int, cfg, rng, device) -> Children:
        """``cfg.real_per_class`` real images of each class (drawn with ``rng``) and the whole validation set."""
        subset = real_subset(real_labels, cfg.real_per_class, num_classes, rng)
        return cls(
            to_input(real_images[subset], device),
            torch.from_numpy(real_labels[subset].astype(np.int64)).to(device),
            to_input(val_images, device),
            torch.from_numpy(val_labels.astype(np.int64)).to(device),
            num_classes,
            cfg.child_steps,
            cfg.child_lr,
        )

    def score(self, x: torch.Tensor, y: torch.Tensor, keep: torch.Tensor, seed: int) -> float:
        """Validation accuracy of a child trained on the real subset plus the candidates (x, y) that ``keep`` marks."""
        return child_score(
            torch.cat([self.real_x, x[keep]]),
            torch.cat([self.real_y, y[keep]]),
            self.val_x,
            self.val_y,
            self.num_classes,
            self.steps,
            self.lr,
            seed=seed,
        )


def start_actor(channels: int, children: Children, cfg, device: torch.device) -> tuple[Actor, torch.optim.Optimizer]:
    """The untrained policy and its optimiser. Its network starts as a classifier of the child's real subset (the
    only real data the agent has): a representation to judge images with; what to keep is left to the reward
    (``scale`` starts at 0)."""
    actor = Actor(channels, children.num_classes).to(device)
    fit_small(actor.net, children.real_x, children.real_y, children.steps, children.lr, cfg.seed)
    # the two keep parameters move on the reward's scale, the network's weights on a classifier's
    opt = torch.optim.Adam(
        [{"params": actor.net.parameters()}, {"params": [actor.scale, actor.bias], "lr": cfg.keep_lr}], lr=cfg.policy_lr
    )
    return actor, opt


def draw_candidates(rng: np.random.Generator, by_class: list[np.ndarray], per_class: int) -> np.ndarray:
    """An episode's candidates: up to ``per_class`` pool indices of each class, without replacement, sorted."""
    return np.sort(
        np.concatenate([rng.choice(ids, min(per_class, len(ids)), replace=False) for ids in by_class if len(ids)])
    )


def run_episode(
    actor: Actor,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    children: Children,
    cfg,
    rng: np.random.Generator,
    action_gen: torch.Generator,
) -> dict:
    """One episode on the candidates (x, y): ``cfg.rollouts`` keep/drop draws, a child scored for each, one policy
    step on the per-image advantages; what it saw, as a history row."""
    actor.train()
    prob = torch.sigmoid(keep_logits(actor, x, y))
    actions = torch.bernoulli(prob.detach().expand(cfg.rollouts, -1).contiguous(), generator=action_gen)
    child_seed = int(rng.integers(2**31))  # one init and batch seed per episode, shared by its rollouts
    scores = np.array([children.score(x, y, a.bool(), child_seed) for a in actions])
    rewards = rollout_rewards(scores, cfg.reward)
    advantage = torch.from_numpy(image_advantages(actions.cpu().numpy(), rewards)).float().to(device=x.device)
    # ascend sum_i advantage_i * p_i; the entropy bonus keeps undecided images undecided a while longer
    entropy = -(prob * prob.clamp_min(1e-6).log() + (1 - prob) * (1 - prob).clamp_min(1e-6).log())
    loss = -(advantage * prob).sum() - cfg.entropy_weight * entropy.sum()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    kept = actions.mean(1).cpu().numpy()
    return {
        "child_score": float(scores.mean()),
        "child_score_spread": float(np.ptp(scores)),
        "kept_fraction": float(kept.mean()),
        "keep_prob": prob.mean().item(),
        "keep_prob_std": prob.std().item(),
        # does the reward still follow subset size? ~0 when the size cannot be gamed
        "size_reward_corr": float(np.corrcoef(kept, scores)[0, 1]) if np.ptp(kept) > 0 and np.ptp(scores) > 0 else 0.0,
        "mean_abs_advantage": float(advantage.abs().mean()),
        "scale": actor.scale.item(),
        "bias": actor.bias.item(),
    }


def train_policy(
    pool_images: np.ndarray,
    pool_labels: np.ndarray,
    real_images: np.ndarray,
    real_labels: np.ndarray,
    val_images: np.ndarray,
    val_labels: np.ndarray,
    num_classes: int,
    cfg,
    device: torch.device,
    on_episode=None,
) -> tuple[Actor, list[dict]]:
    """``cfg.episodes`` episodes of ``cfg.rollouts`` children each; returns the actor and one row per episode."""
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    action_gen = torch.Generator(device=device).manual_seed(cfg.seed)
    children = Children.draw(real_images, real_labels, val_images, val_labels, num_classes, cfg, rng, device)
    by_class = [np.flatnonzero(pool_labels == c) for c in range(num_classes)]
    actor, opt = start_actor(pool_images.shape[-1], children, cfg, device)
    history = []
    for episode in (bar := tqdm(range(1, cfg.episodes + 1), desc="rl_policy", unit="episode")):
        cand = draw_candidates(rng, by_class, cfg.candidates_per_class)
        x, y = to_input(pool_images[cand], device), torch.from_numpy(np.asarray(pool_labels[cand], np.int64)).to(device)
        row = {"episode": episode, **run_episode(actor, opt, x, y, children, cfg, rng, action_gen)}
        history.append(row)
        bar.set_postfix(
            score=f"{row['child_score']:.3f}", kept=f"{row['kept_fraction']:.2f}", spread=f"{row['keep_prob_std']:.3f}"
        )
        if on_episode is not None:
            on_episode(row)
    return actor, history


@torch.inference_mode()
def keep_probabilities(
    actor: Actor, images: np.ndarray, labels: np.ndarray, device: torch.device, batch_size: int = 1000
) -> np.ndarray:
    """The policy's keep probability for every image under its label (memory-mapped input is read
    batch by batch). ``center`` is set to the mean evidence over these images with the final network
    -- the population the training candidates were drawn from -- rather than the running mean of
    small batches seen by earlier versions of the network."""
    actor.eval()
    evidence = [
        actor.evidence(
            to_input(images[s : s + batch_size], device),
            torch.from_numpy(np.asarray(labels[s : s + batch_size], np.int64)).to(device),
        ).float()
        for s in range(0, len(images), batch_size)
    ]
    if not evidence:
        return np.empty(0, np.float32)
    evidence = torch.cat(evidence)
    actor.center.copy_(evidence.mean())
    return torch.sigmoid(actor.bias + actor.scale * (evidence - actor.center)).cpu().numpy().astype(np.float32)


def policy_metrics(history: list[dict], keep: np.ndarray, n_real: int, scores=None) -> dict:
    """What the trained agent does with the whole pool: how much it keeps (its own choice, x the real
    set), how content-dependent its rule is (a rule that keeps everything alike has a tiny spread),
    its reward curve, and -- given the pool's score table -- the scorer's confidence and D's realism
    of what it keeps vs what it drops."""
    kept_mask = keep > KEEP_THRESHOLD
    first, last = history[: min(10, len(history))], history[-min(10, len(history)) :]
    out = {
        "episodes": len(history),
        "pool_size": int(len(keep)),
        "kept": int(kept_mask.sum()),
        "kept_fraction": round(float(kept_mask.mean()), 5) if len(keep) else 0.0,
        "chosen_ratio": round(float(kept_mask.sum()) / n_real, 4),
        "keep_prob": {
            k: round(float(f(keep)), 4)
            for k, f in (("min", np.min), ("mean", np.mean), ("max", np.max), ("std", np.std))
        },
        "mean_child_score_first10": round(float(np.mean([r["child_score"] for r in first])), 5),
        "mean_child_score_last10": round(float(np.mean([r["child_score"] for r in last])), 5),
        "size_reward_corr": round(float(np.mean([r["size_reward_corr"] for r in history])), 4),
    }
    if scores is not None and len(keep):
        from scipy.stats import spearmanr

        for col in ("confidence", "realism"):
            v = scores[col].to_numpy(np.float64)
            out[col] = {
                "kept": round(float(v[kept_mask].mean()), 4) if kept_mask.any() else None,
                "dropped": round(float(v[~kept_mask].mean()), 4) if (~kept_mask).any() else None,
                # undefined when every keep probability is the same (an untrained agent)
                "spearman_with_keep": round(float(spearmanr(keep, v).statistic), 4)
                if np.ptp(keep) > 0 and np.ptp(v) > 0
                else None,
            }
    return out
