"""Training a GAN of any ``gan.arch`` (its networks and losses: ganaug.gan.archs.ARCHS): hinge loss,
DiffAugment on real and fake in D and G steps, ``n_dis`` D steps per G step, an EMA generator for sampling,
optional LeCam regulariser.
By steps, with checkpoints and resume; the kept generator is the best by FID, not the last. At gan.steps 0 (a
generator started from weights, used as it is) nothing is trained or resumed: its FID is measured once.
Read top to bottom: train_gan() is the loop."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from timm.utils import ModelEmaV3
from tqdm import tqdm

from ganaug.distributed import Ranks
from ganaug.errors import GanaugError
from ganaug.gan.archs import arch_of, build_networks, relevant_config, weights_record
from ganaug.gan.checkpoint import load_checkpoint, load_state, save_checkpoint
from ganaug.gan.pixels import from_uint8
from ganaug.gan.pool import generate

# keys of gan params that do not change what a checkpoint holds (so a run can resume with them changed)
SCHEDULE_KEYS = {"steps", "ckpt_every", "eval_every", "eval_samples"}


@dataclass
class Gan:
    G: torch.nn.Module
    D: torch.nn.Module
    ema: ModelEmaV3 | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None  # None: a generator without a discriminator to train (gan.arch ddpm)
    step: int = 0
    losses: list = field(default_factory=list)  # every log_every steps
    window: list = field(default_factory=list)  # per-step losses since the last losses row (tensors or floats)
    evals: list = field(default_factory=list)  # every eval_every steps
    best: dict = field(default_factory=lambda: {"fid": float("inf"), "step": 0})
    best_weights: dict = field(default_factory=dict)  # sampler G + D at the best step
    lecam_ema: torch.Tensor = field(default_factory=lambda: torch.zeros(2))  # EMA of D(real), D(fake), on the device

    @property
    def sampler(self) -> torch.nn.Module:
        """The generator used for sampling: the EMA copy when EMA is on."""
        return self.ema.module if self.ema is not None else self.G


def build_gan(num_classes: int, channels: int, image_size: int, cfg, device: torch.device) -> Gan:
    G, D = build_networks(num_classes, channels, image_size, cfg.model_dump())
    G, D = G.to(device), D.to(device)
    # no EMA copy of a generator that is not trained (a pretrained one's copy could take gigabytes)
    ema = ModelEmaV3(G, decay=cfg.ema_decay, use_warmup=True) if cfg.ema_decay > 0 and cfg.steps > 0 else None
    betas = (cfg.beta1, cfg.beta2)
    return Gan(
        G,
        D,
        ema,
        torch.optim.Adam(G.parameters(), cfg.lr_g, betas=betas),
        torch.optim.Adam(D.parameters(), cfg.lr_d, betas=betas) if any(True for _ in D.parameters()) else None,
        lecam_ema=torch.zeros(2, device=device),
    )


def fingerprint(cfg, data_digest: str, num_classes: int, channels: int, image_size: int) -> str:
    """What a checkpoint is a checkpoint *of*: the networks (and the weights they started from), the optimisation
    and the data."""
    what = {k: v for k, v in relevant_config(cfg.model_dump()).items() if k not in SCHEDULE_KEYS}
    what.update(weights_record(cfg.model_dump()))
    what.update(data=data_digest, num_classes=num_classes, channels=channels, image_size=image_size)
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def balanced_labels(n: int, num_classes: int) -> torch.Tensor:
    return torch.arange(n) % num_classes


def batch_drawers(labels: torch.Tensor, num_classes: int, batch_size: int, balance: bool):
    """Two samplers of one batch each: real indices, and labels for generated images. ``balance``:
    every class equally likely in both (each real image drawn with probability 1 / (C x its class
    count)), so on an imbalanced set the tail classes get as many D and G updates as the head;
    otherwise by frequency (uniform over real images; generated labels follow the real ones)."""
    n = len(labels)
    if not balance:
        return (
            lambda: torch.randint(n, (batch_size,), device=labels.device),
            lambda: labels[torch.randint(n, (batch_size,), device=labels.device)],
        )
    counts = torch.bincount(labels, minlength=num_classes).float()
    present = (counts > 0).nonzero().flatten()  # a class with no real image cannot be learned: never asked for
    weights = 1.0 / counts[labels]
    return (
        lambda: torch.multinomial(weights, batch_size, replacement=True),
        lambda: present[torch.randint(len(present), (batch_size,), device=labels.device)],
    )


DEVICE_SHARE = 0.25  # the real set stays on the GPU while its uint8 copy takes at most this share of its memory


class RealSet:
    """All real images, uint8 N x H x W x C (a quarter of float32's bytes), and their labels: on the training
    device, or in pinned CPU memory when they would take more than ``DEVICE_SHARE`` of a GPU's memory (then the
    indices are drawn on the CPU too, so no step waits on the GPU for them). Indexing gives float N x C x H x W in
    [-1, 1] on the device, the same values as converting the whole set first."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, device: torch.device):
        self.device = device
        self.home = device if fits_on_device(images.nbytes, device) else torch.device("cpu")
        self.images, self.labels = torch.from_numpy(images), torch.from_numpy(labels)
        if self.home.type == "cpu" and device.type == "cuda":
            self.images = self.images.pin_memory()
        self.images, self.labels = self.images.to(self.home), self.labels.to(self.home)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, idx: torch.Tensor) -> torch.Tensor:
        batch = self.images[idx.to(self.home)]
        if batch.device != self.device:
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        return from_uint8(batch)


def fits_on_device(nbytes: int, device: torch.device) -> bool:
    if device.type != "cuda":
        return True
    _, total = torch.cuda.mem_get_info(device)
    return nbytes <= DEVICE_SHARE * total


@dataclass
class Draws:
    """This step's random inputs, drawn on demand and in the order a loss asks for them: every
    global batch is drawn whole (the same on every torchrun rank) and this rank keeps its share."""

    real_set: RealSet
    draw_real: object
    draw_labels: object
    batch_size: int
    z_dim: int
    ranks: Ranks

    def real(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.ranks.shard(self.draw_real())
        return self.real_set[idx], self.real_set.labels[idx].to(self.real_set.device, non_blocking=True)

    def labels(self) -> torch.Tensor:
        return self.ranks.shard(self.draw_labels()).to(self.real_set.device, non_blocking=True)

    def z(self) -> torch.Tensor:
        return self.ranks.shard(torch.randn(self.batch_size, self.z_dim, device=self.real_set.device))


def _tensors(gan: Gan) -> dict[str, torch.Tensor]:
    out = {f"G.{k}": v for k, v in gan.G.state_dict().items()}
    out.update({f"D.{k}": v for k, v in gan.D.state_dict().items()})
    if gan.ema is not None:
        out.update({f"ema.{k}": v for k, v in gan.ema.state_dict().items()})
    out.update({f"best.{k}": v for k, v in gan.best_weights.items()})
    out["rng"] = torch.get_rng_state()
    out["lecam_ema"] = gan.lecam_ema.cpu()
    return out


def window_rows(window: list) -> list[dict]:
    """The per-step values as floats, in one transfer from the device: the only sync of a logging interval."""
    if not window:
        return []
    keys = list(window[0])
    device = next((v.device for v in window[0].values() if isinstance(v, torch.Tensor)), torch.device("cpu"))
    values = torch.stack([torch.as_tensor(w[k], dtype=torch.float32, device=device) for w in window for k in keys])
    flat = iter(values.tolist())
    return [{k: next(flat) for k in keys} for _ in window]


def save(gan: Gan, folder: Path) -> None:
    window = window_rows(gan.window)
    meta = {"step": gan.step, "losses": gan.losses, "window": window, "evals": gan.evals, "best": gan.best}
    optim = {"opt_g": gan.opt_g.state_dict(), **({"opt_d": gan.opt_d.state_dict()} if gan.opt_d is not None else {})}
    save_checkpoint(folder, _tensors(gan), optim, meta)


def resume(gan: Gan, folder: Path) -> bool:
    loaded = load_checkpoint(folder)
    if loaded is None:
        return False
    tensors, optim, meta = loaded
    load_state(gan.G, tensors, "G.", folder)
    load_state(gan.D, tensors, "D.", folder)
    if gan.ema is not None:
        load_state(gan.ema, tensors, "ema.", folder)
    try:
        gan.opt_g.load_state_dict(optim["opt_g"])
        if gan.opt_d is not None:
            gan.opt_d.load_state_dict(optim["opt_d"])
    except (KeyError, ValueError) as err:
        raise GanaugError(
            f"{folder}: optimizer state does not match ({err}); delete that folder to start afresh"
        ) from None
    gan.best_weights = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
    gan.step, gan.losses, gan.window, gan.evals, gan.best = (
        meta["step"],
        meta["losses"],
        meta.get("window", []),
        meta["evals"],
        meta["best"],
    )
    torch.set_rng_state(tensors["rng"])
    gan.lecam_ema = tensors["lecam_ema"].to(next(gan.G.parameters()).device)
    return True


def evaluation_inputs(G, real: RealSet, targets: torch.Tensor, cfg) -> torch.Tensor:
    """What generate() feeds G for each evaluation label: seeded latents for the cGAN; for a
    translation generator, seeded real images of another class (the pool translates into other
    classes only)."""
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    if G.takes != "image":
        return torch.randn(len(targets), G.z_dim, generator=gen)
    labels = real.labels.cpu()
    source = torch.randint(len(labels), (len(targets),), generator=gen)
    for _ in range(1000):
        same = labels[source] == targets
        if not same.any() or len(labels.unique()) < 2:
            break
        source[same] = torch.randint(len(labels), (int(same.sum()),), generator=gen)
    return real[source].cpu()


def train_step(gan: Gan, draws: Draws, cfg, losses: tuple, d_steps: int) -> dict:
    """One generator step after ``d_steps`` discriminator steps, then the EMA; returns the values to log (tensors on
    the device: read once per logging interval)."""
    d_loss_of, g_loss_of = losses
    gan.G.train()
    logged = {}
    for _ in range(d_steps):
        d_loss, d_out = d_loss_of(gan, draws, cfg)
        gan.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        draws.ranks.average_gradients(gan.D)
        gan.opt_d.step()
        logged = {"d_loss": d_loss.detach()}
    g_loss, g_out = g_loss_of(gan, draws, cfg)
    gan.opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    draws.ranks.average_gradients(gan.G)
    gan.opt_g.step()
    gan.step += 1
    if gan.ema is not None:
        gan.ema.update(gan.G, step=gan.step)
    return {**logged, "g_loss": g_loss.detach(), **(d_out if d_steps else {}), **g_out}


def train_gan(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    cfg,
    device: torch.device,
    ckpt_dir: Path,
    evaluate=None,
    on_log=None,
    on_eval=None,
    log_every: int = 50,
    ranks: Ranks | None = None,
    sample=None,
) -> Gan:
    """Train to ``cfg.steps`` generator steps, resuming from ``ckpt_dir`` if it holds a checkpoint.

    images: uint8 N x H x W x C; evaluate(fake_uint8, fake_labels) -> dict with 'fid' (or None to skip);
    on_log(row) / on_eval(row, grid_images) are called as rows are made; sample(G, labels) -> uint8 images draws
    the evaluation images of a generator that is not run as G(z, labels) (its Arch's ``sample``).

    Under torchrun every rank draws the same global batches (same seed) and trains on its share;
    D's and G's gradients are averaged over ranks before each step, so the replicas stay identical.
    Rank 0 alone evaluates, calls back and writes checkpoints."""
    ranks = ranks or Ranks.here(device)
    ranks.check_batch(cfg.batch_size, "gan.batch_size")
    torch.manual_seed(cfg.seed)
    gan = build_gan(num_classes, images.shape[-1], images.shape[1], cfg, device)
    resumed = cfg.steps > 0 and resume(gan, ckpt_dir)  # steps 0: the networks as loaded, never a checkpoint's
    real_set = RealSet(images, labels, device)
    # fixed inputs for evaluation, so successive FIDs compare the same draws
    eval_labels = balanced_labels(cfg.eval_samples, num_classes)
    eval_z = evaluation_inputs(gan.G, real_set, eval_labels, cfg) if sample is None else None
    started = time.perf_counter()
    main = ranks.is_main
    bar = tqdm(
        total=cfg.steps,
        initial=gan.step,
        desc="train_gan" + (" (resumed)" if resumed else ""),
        unit="step",
        disable=not main,
    )
    draw_real, draw_labels = batch_drawers(real_set.labels, num_classes, cfg.batch_size, cfg.balance_classes)
    draws = Draws(real_set, draw_real, draw_labels, cfg.batch_size, cfg.z_dim, ranks)
    arch = arch_of(cfg.model_dump())
    d_steps = cfg.n_dis if arch.adversarial else 0
    while gan.step < cfg.steps:
        logged = train_step(gan, draws, cfg, arch.losses, d_steps)
        if not main:  # rank 0 logs, evaluates and checkpoints
            continue
        bar.update(1)
        gan.window.append(logged)

        if gan.step % log_every == 0 or gan.step == cfg.steps:
            window = window_rows(gan.window)
            row = {"step": gan.step, **{k: float(np.mean([w[k] for w in window])) for k in window[0]}}
            gan.losses.append(row)
            gan.window = []
            bar.set_postfix({k[0]: f"{row[k]:.3f}" for k in ("d_loss", "g_loss") if k in row})
            if on_log:
                on_log(row)
        if evaluate is not None and (gan.step % cfg.eval_every == 0 or gan.step == cfg.steps):
            evaluation(gan, evaluate, eval_z, eval_labels, ranks, started, bar, on_eval, keep=True, sample=sample)
        if gan.step % cfg.ckpt_every == 0 or gan.step == cfg.steps:
            save(gan, ckpt_dir)
    if cfg.steps == 0 and main and evaluate is not None:  # used as it is: its quality, once
        evaluation(gan, evaluate, eval_z, eval_labels, ranks, started, bar, on_eval, keep=False, sample=sample)
    bar.close()
    return gan


def evaluation(
    gan: Gan, evaluate, eval_z, eval_labels, ranks: Ranks, started: float, bar, on_eval, keep: bool, sample=None
):
    """One evaluation row at the current step; a new best FID is recorded, with a copy of the networks when
    ``keep`` (without it, as at step 0, the networks as built are the best)."""
    fake_images = generate(gan.sampler, eval_z, eval_labels) if sample is None else sample(gan.sampler, eval_labels)
    with ranks.rank0_rng():  # KID's random subsets must not move rank 0's batch draws
        quality = evaluate(fake_images, eval_labels.numpy())
    row = {"step": gan.step, "seconds": round(time.perf_counter() - started, 1), **quality}
    gan.evals.append(row)
    if row["fid"] < gan.best["fid"]:
        gan.best = {"fid": row["fid"], "step": gan.step}
        if keep:
            gan.best_weights = {
                **{f"G.{k}": v.detach().cpu().clone() for k, v in gan.sampler.state_dict().items()},
                **{f"D.{k}": v.detach().cpu().clone() for k, v in gan.D.state_dict().items()},
            }
    bar.write(
        f"step {gan.step}: FID {row['fid']:.1f}  KID {row['kid']:.4f}  diversity {row['diversity_ratio']:.2f}  "
        + (f"label agreement {row['label_agreement']:.2f}" if row["label_agreement"] == row["label_agreement"] else "")
    )  # (NaN for an unconditional generator: no label to agree with)
    if on_eval:
        on_eval(row, fake_images)


def best_networks(gan: Gan, cfg):
    """The sampler generator and the discriminator at the best-FID step (the last ones if never evaluated), on the
    CPU; at gan.steps 0, the networks as built, where they are (a pretrained one is loaded and moved once)."""
    if cfg.steps == 0:
        return gan.G.eval(), gan.D.eval()
    # fresh networks + state dicts: spectral-norm modules cannot be deep-copied
    G, D = build_networks(gan.G.num_classes, gan.G.channels, gan.G.image_size, cfg.model_dump())
    if gan.best_weights:
        G.load_state_dict({k[2:]: v for k, v in gan.best_weights.items() if k.startswith("G.")})
        D.load_state_dict({k[2:]: v for k, v in gan.best_weights.items() if k.startswith("D.")})
    else:
        G.load_state_dict({k: v.cpu() for k, v in gan.sampler.state_dict().items()})
        D.load_state_dict({k: v.cpu() for k, v in gan.D.state_dict().items()})
    return G.eval(), D.eval()
