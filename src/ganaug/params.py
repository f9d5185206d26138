"""Typed, validated view of params.yaml: the one place that knows every key, its type and range.

The defaults here equal params.yaml's values (a test checks), so a key deleted from params.yaml keeps its value.

Unknown keys, wrong types and out-of-range values are refused with one line naming the key
(e.g. ``params.yaml: data.per_class: must be a positive integer or 'all' (got -3)``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ganaug.errors import GanaugError

DATASETS = ("fashion-mnist", "mnist", "digits", "cifar10", "folder")
NO_FOLDER = "data/no-images"  # data.root's default: a placeholder in git, for the sources that need no folder
# The registries' names, which params.yaml may use. They are kept here rather than imported so that every stage
# reads params without the sampling and experiment code: an edit to a sampler must not mark the GAN's stages
# changed in `dvc status`. A test checks each tuple against its registry.
SAMPLER_NAMES = (
    "random",
    "cl-sam",
    "cr-sam",
    "combined",
    "diverse",
    "rl",
    "dapper",
    "uncertainty",
    "d-class",
    "pseudo-label",
)
OWN_SAMPLER_NAMES = ("rl",)  # the samplers that also choose how many (ganaug.sampling.samplers.Sampler.own)
ARCH_NAMES = ("cgan", "stargan", "style", "ddpm")  # ganaug.gan.archs.ARCHS
VARIANT_NAMES = ("real", "rotate", "plain", "rotated-copies", "resample", "logit-adjust")  # ganaug.experiment.VARIANTS


def _positive_or_all(v):
    if v != "all" and v < 1:
        raise ValueError(f"must be a positive integer or 'all' (got {v})")
    return v


class _Strict(BaseModel):
    # extra="forbid": a misspelt key is an error, never a silently ignored setting
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(_Strict):
    name: Literal[DATASETS] = "fashion-mnist"
    # image folder <root>/<class>/*.png for name: folder, versioned with `dvc add`; a dependency of the fetch
    # stage, so it must exist for every source (the default, data/no-images, is in git and holds only a README)
    root: str = Field(NO_FOLDER, min_length=1)
    image_size: int = Field(32, ge=16, le=256)  # any size: the GAN works at the nearest base x 2^k and resizes
    resize: Literal["stretch", "crop", "pad"] = "stretch"  # non-square images: stretch | centre crop | pad to square
    channels: Literal[1, 3] | None = None  # None: what the source has
    per_class: int | Literal["all"] = 100
    # a count per class (int) or a fraction of each class (float in (0, 1)); test only for sources
    # without an official test split (a fraction fits any folder, and keeps its natural imbalance)
    val_per_class: int | float = 50
    test_per_class: int | float = 0.2
    imbalance: float | list[float] | None = None
    skip_corrupt: bool = False
    # name: folder: the grey level transparent pixels are composited onto (0 black, 255 white)
    background: int = Field(255, ge=0, le=255)
    # name: folder: an image found twice is kept once, on the test side of a user-given split (keep-one),
    # or every copy of one that a user-given split puts on two sides is dropped (drop)
    duplicates: Literal["keep-one", "drop"] = "keep-one"
    # images without labels beside the labelled set (the generator may pre-train on them; pseudo-labelling
    # uses them): null none | rest: the source's training images not drawn as train or val, labels dropped |
    # folder: every image under unlabelled_root (no class folders), versioned with `dvc add`
    unlabelled: Literal["rest", "folder"] | None = None
    unlabelled_root: str = Field(NO_FOLDER, min_length=1)  # unlabelled: folder; a dependency of prepare
    unlabelled_max: int | Literal["all"] = "all"  # a seeded subset of at most this many unlabelled images
    seed: int = Field(0, ge=0)

    _per_class = field_validator("per_class", "unlabelled_max")(_positive_or_all)

    @field_validator("val_per_class", "test_per_class", mode="before")
    @classmethod
    def _count_or_fraction(cls, v):  # before pydantic's coercion: true is not 1, "0.5" is not 0.5
        count = isinstance(v, int) and not isinstance(v, bool) and v >= 1
        fraction = isinstance(v, float) and 0 < v < 1
        if not (count or fraction):
            raise ValueError(
                f"expected a count per class (an integer >= 1) or a fraction of each class in (0, 1) (got {v!r})"
            )
        return v

    @field_validator("imbalance")
    @classmethod
    def _valid_imbalance(cls, v):
        if isinstance(v, (int, float)) and v < 1:
            raise ValueError(f"a ratio (largest / smallest class) must be >= 1 (got {v})")
        if isinstance(v, list) and not all(0 < f <= 1 for f in v):
            raise ValueError(f"per-class fractions must each be in (0, 1] (got {v})")
        return v


# a mirrored digit is another or an impossible glyph; clothes, objects and photos mirror safely
HFLIP_BY_DATASET = {"fashion-mnist": True, "mnist": False, "digits": False, "cifar10": True, "folder": True}


class AugmentParams(_Strict):
    hflip: bool | None = None  # null: the dataset's default (HFLIP_BY_DATASET)
    crop_padding: int = Field(2, ge=0, le=16)  # pad-and-random-crop; 0 turns it off
    rotate_degrees: float = Field(0.0, ge=0, le=180)


class TrainParams(_Strict):
    model: str = "resnet10t"
    pretrained: bool = False
    pretrained_path: str | None = None  # local weights file; never a hub download
    epochs: int = Field(40, ge=1)
    batch_size: int = Field(64, ge=1)
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = Field(0.05, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    schedule: Literal["onecycle", "cosine", "constant"] = "onecycle"
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    augment: AugmentParams = AugmentParams()
    eval_batch_size: int = Field(512, ge=1)
    # false: on a GPU, cuDNN's fastest kernels (benchmark mode) and nondeterministic ones allowed: faster, but
    # two runs of one seed differ in floating point; the CPU is deterministic either way
    deterministic: bool = True
    seed: int = Field(0, ge=0)

    def recorded(self, exclude: set[str] | None = None) -> dict:
        """The config a run records (its metrics, its saved model): ``deterministic`` only when it is off, so
        runs recorded before the switch existed stay identical and comparable."""
        return self.model_dump(exclude={*(exclude or ()), *(("deterministic",) if self.deterministic else ())})


class GanParams(_Strict):
    # cgan: from noise; stargan: translations of real images (paper 000); style: unconditional, pre-trained on
    # the unlabelled images (data.unlabelled), projected into W by DAPPER (paper 003); ddpm: a diffusion model
    # pre-trained on them, its DDIM inversion the projection (Diffusion Inversion)
    arch: Literal[ARCH_NAMES] = "cgan"
    steps: int = Field(800, ge=1)  # generator steps (training is by steps, not epochs)
    batch_size: int = Field(32, ge=2)
    z_dim: int = Field(128, ge=1)
    g_width: int = Field(48, ge=4)
    d_width: int = Field(32, ge=4)
    min_width: int = Field(32, ge=4)  # no G or D block below this many channels (halving would leave 12 at 64 px)
    balance_classes: bool = (
        True  # real batches and generated labels drawn class-balanced, so a rare class is learned too
    )
    lr_g: float = Field(2e-4, gt=0)
    lr_d: float = Field(2e-4, gt=0)
    beta1: float = Field(0.0, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    n_dis: int = Field(2, ge=1)  # D steps per G step
    diffaugment: str = "color,translation,cutout"  # '' = off
    ema_decay: float = Field(0.999, ge=0, lt=1)  # EMA generator used for sampling; 0 = off
    lecam: float = Field(0.0, ge=0)  # LeCam regulariser weight; 0 = off
    res_blocks: int = Field(3, ge=0)  # stargan: residual blocks between encoder and decoder
    lambda_cls: float = Field(1.0, ge=0)  # stargan: weight of the domain-classification losses
    lambda_rec: float = Field(10.0, ge=0)  # stargan: weight of the cycle reconstruction loss
    mapping_layers: int = Field(2, ge=1)  # style: layers of the mapping network z -> w (StyleGAN2-ADA's CIFAR: 2)
    unet_width: int = Field(32, ge=4)  # ddpm: the UNet's channels (w, 2w, 2w; 32: 1.1M parameters)
    sample_steps: int = Field(20, ge=1)  # ddpm: DDIM steps to sample and to invert (a network pass each)
    ckpt_every: int = Field(200, ge=1)
    eval_every: int = Field(200, ge=1)
    eval_samples: int = Field(1000, ge=20)
    seed: int = Field(0, ge=0)

    @field_validator("diffaugment")
    @classmethod
    def _known_policy(cls, v):
        unknown = [p for p in (q.strip() for q in v.split(",")) if p and p not in ("color", "translation", "cutout")]
        if unknown:
            raise ValueError(
                f"unknown DiffAugment part(s) {unknown}; expected a comma list of color, translation, cutout"
            )
        return v


class GenerateParams(_Strict):
    pool_multiple: float = Field(10.0, gt=0)  # pool size = this x the real training set, balanced per class
    truncation: float | None = Field(None, gt=0)  # truncation trick; null = plain normal latents
    translate: bool = False  # cgan: a pool of translations (project each real image, decode it under the other labels)
    include_own: bool = False  # translations: also into each real image's own class
    max_draws: float = Field(10.0, gt=0)  # unconditional generators: stop drawing at this x the pool size
    batch_size: int = Field(1000, ge=1)
    seed: int = Field(0, ge=0)


class ProjectionParams(_Strict):
    per_class: int | Literal["all"] = 20  # real training images per class to project
    steps: int = Field(100, ge=1)  # optimisation steps per image
    lr: float = Field(0.05, gt=0)
    feature_weight: float = Field(0.1, ge=0)  # feature loss (classifier space) next to the pixel loss
    variants: int = Field(9, ge=1)  # perturbed images per projected image
    # random: the paper's reported gains; directions: SeFa, unsupervised; predictor: a linear predictor's
    # weights on latents against predictor_target (the paper's supervised directions)
    method: Literal["random", "directions", "predictor"] = "random"
    sigma: float = Field(0.5, gt=0)  # for method: random
    directions: int = Field(5, ge=1)  # top SeFa directions, for method: directions
    predictor_target: Literal["confidence", "realism"] = (
        "confidence"  # the scorer's logit for the class, or D's realism
    )
    predictor_samples: int = Field(500, ge=10)  # fresh latents per class the predictor is fitted on
    coefficients: list[float] = Field([-3.0, -1.5, 1.5, 3.0], min_length=1)
    include_reconstruction: bool = True  # the reconstruction itself is a pool row too
    w_plus: bool = False  # gan.arch style: project into W+ (one w per layer) instead of W (the paper's)
    seed: int = Field(0, ge=0)

    _per_class = field_validator("per_class")(_positive_or_all)

    @model_validator(mode="after")
    def _distinct_variants(self):
        # more variants than distinct (direction, coefficient) steps would repeat images exactly
        steps = {"directions": self.directions, "predictor": 1}.get(self.method, 0) * len(self.coefficients)
        if self.method != "random" and self.variants > steps:
            raise ValueError(
                f"variants = {self.variants} but method {self.method} has only {steps} distinct steps "
                f"({steps // len(self.coefficients)} direction(s) x {len(self.coefficients)} coefficients), so "
                "images would repeat; lower projection.variants or add projection.coefficients (got "
                f"variants={self.variants})"
            )
        return self


class ScoreParams(_Strict):
    batch_size: int = Field(500, ge=1)  # pool images per scoring batch (memory stays bounded by this)


class SelectParams(_Strict):
    diverse_keep: float = Field(
        0.5, gt=0, le=1
    )  # diverse: keep this top fraction of a class by confidence, then cover it
    combined_realism_weight: float = Field(0.5, ge=0, le=1)  # combined: weight of the realism rank (rest: confidence)
    balance: bool = True  # synthetic quotas fill the small classes first (imbalanced by data.imbalance or by nature)
    seed: int = Field(0, ge=0)


class RlParams(_Strict):
    episodes: int = Field(60, ge=1)
    candidates_per_class: int = Field(
        2, ge=1
    )  # pool images judged per episode, per class: few, so each one sways the reward
    rollouts: int = Field(4, ge=2)  # keep/drop draws per episode, one child each: each other's threshold
    real_per_class: int = Field(10, ge=1)  # the child's small real subset (the paper's ~1% of the real data)
    child_steps: int = Field(60, ge=1)  # every child's optimiser steps, whatever it kept (size cannot buy reward)
    child_lr: float = Field(3e-3, gt=0)
    reward: Literal["sign", "difference"] = "sign"  # vs the other rollouts: the paper's +1/-1, or the score difference
    policy_lr: float = Field(1e-3, gt=0)  # the actor network's weights
    keep_lr: float = Field(0.05, gt=0)  # the actor's keep scale and bias
    entropy_weight: float = Field(0.0, ge=0)
    seed: int = Field(0, ge=0)


class ExperimentParams(_Strict):
    samplers: list[Literal[SAMPLER_NAMES]] = ["random", "cl-sam", "diverse"]
    # Union[int, float]: 1 stays 1 (not 1.0), so names built here match the stage names DVC builds from the YAML
    # synthetic images added, x the real training set; topup: each class filled up to the largest one's count
    ratios: list[int | float | Literal["topup"]] = [1]
    seeds: list[int] = Field([0, 1, 2, 3, 4], min_length=1)
    # real-only rows: real (train.augment), rotate (+ online rotation), plain (no augmentation),
    # rotated-copies (plain + one copy of each image rotated by U(0, rotate_copies_degrees), paper 004)
    baselines: list[Literal[VARIANT_NAMES]] = ["real"]
    # real-only rows trained for the optimiser steps of these ratios (0: the real set's own); under
    # match: real_epochs a ratio-r row is compared only with the real-only row at r
    baseline_at: list[int | float] = Field([0], min_length=1)
    rotate_degrees: float = Field(15.0, gt=0, le=180)  # for the rotate baseline
    rotate_copies_degrees: float = Field(45.0, gt=0, le=180)  # for the rotated-copies baseline (paper 004: 0..45)
    replace: list[int | float] = []  # replace these fractions of the real set by synthetic, set size constant
    replace_sampler: Literal[SAMPLER_NAMES] = "random"  # paper 001 replaces with unfiltered GAN samples
    counts: list[int] = []  # fixed numbers of synthetic images added (paper 004)
    count_sampler: Literal[SAMPLER_NAMES] = "random"  # paper 004 adds unfiltered GAN samples
    # samplers that also choose how many: real + the subset they keep (paper 000's RL)
    own: list[Literal[OWN_SAMPLER_NAMES]] = []
    epochs: int | None = Field(12, ge=1)  # training epochs for every experiment run; null = train.epochs
    match: Literal["steps", "real_epochs"] = (
        "steps"  # same optimiser steps as real-only, or same epochs over the real set
    )
    synthetic_weight: float = Field(1.0, ge=0)  # loss weight of a synthetic image (real images weigh 1)
    synthetic_labels: Literal["hard", "confidence", "soft"] = "hard"  # soft: the scorer's distribution as target
    finetune_epochs: int = Field(0, ge=0)  # final epochs on real images only (lr / 10)
    # mix: real + synthetic, then the fine-tune | pretrain: synthetic only, then the fine-tune on real |
    # head-refit: real + synthetic, then only the classifier head refitted on real, class-balanced (SYNAuG)
    recipe: Literal["mix", "pretrain", "head-refit"] = "mix"

    @field_validator("ratios", "replace")
    @classmethod
    def _fractions(cls, v, info):
        numbers = [x for x in v if not isinstance(x, str)]  # 'topup' is a quota policy, not a number
        if any(x <= 0 for x in numbers) or (info.field_name == "replace" and any(x > 1 for x in numbers)):
            raise ValueError(
                f"expected {'fractions in (0, 1]' if info.field_name == 'replace' else 'positive ratios'} (got {v})"
            )
        return v

    @field_validator("baseline_at")
    @classmethod
    def _budgets(cls, v):
        if any(x < 0 for x in v) or len(set(v)) != len(v):
            raise ValueError(f"expected distinct ratios >= 0, 0 for the real set's own budget (got {v})")
        return v

    @field_validator("counts", "seeds")
    @classmethod
    def _non_negative(cls, v, info):
        if any(x < (0 if info.field_name == "seeds" else 1) for x in v):
            raise ValueError(
                f"expected {'non-negative' if info.field_name == 'seeds' else 'positive'} integers (got {v})"
            )
        if len(set(v)) != len(v):
            raise ValueError(f"expected distinct values (got {v})")
        return v


class MlflowParams(_Strict):
    experiment: str = Field("ganaug", min_length=1)


class Params(_Strict):
    data: DataParams = DataParams()
    train: TrainParams = TrainParams()
    gan: GanParams = GanParams()
    generate: GenerateParams = GenerateParams()
    projection: ProjectionParams = ProjectionParams()
    score: ScoreParams = ScoreParams()
    select: SelectParams = SelectParams()
    rl: RlParams = RlParams()
    experiments: ExperimentParams = ExperimentParams()
    mlflow: MlflowParams = MlflowParams()


def _one_line(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key '{key}' (check the spelling; see params.yaml for the known keys)"
    msg = first["msg"].removeprefix("Value error, ")
    if "(got " not in msg:
        msg += f" (got {first.get('input')!r})"
    return f"{source}: {key}: {msg}"


def parse_params(raw: dict, source: str = "params.yaml") -> Params:
    """Validate a params mapping; raise GanaugError naming the first bad key."""
    try:
        params = Params.model_validate(raw or {})
    except ValidationError as err:
        raise GanaugError(_one_line(err, source)) from None
    if params.train.pretrained and not params.train.pretrained_path:
        raise GanaugError(
            f"{source}: train.pretrained: true needs train.pretrained_path, a local weights file "
            "(ganaug never downloads weights from a hub)"
        )
    if params.train.augment.hflip is None:  # resolved once here: every stage and run record sees a bool
        augment = params.train.augment.model_copy(update={"hflip": HFLIP_BY_DATASET[params.data.name]})
        params = params.model_copy(update={"train": params.train.model_copy(update={"augment": augment})})
    exp = params.experiments
    if params.gan.arch == "stargan" and params.gan.lecam > 0:
        raise GanaugError(
            f"{source}: gan.lecam: the LeCam regulariser is implemented for gan.arch cgan only; set it to 0"
        )
    if exp.recipe != "mix" and exp.finetune_epochs == 0:
        raise GanaugError(
            f"{source}: experiments.recipe: {exp.recipe} ends with a phase on real images; "
            "set experiments.finetune_epochs > 0 (its length)"
        )
    if exp.recipe == "pretrain" and 1 in exp.replace:
        raise GanaugError(
            f"{source}: experiments.replace: 1.0 leaves no real image, and recipe: pretrain normalises by the real "
            "images; drop 1.0 from replace or use recipe: mix"
        )
    if exp.recipe == "pretrain" and exp.match != "steps":
        raise GanaugError(
            f"{source}: experiments.recipe: pretrain trains on synthetic images alone, so only match: steps "
            "gives it real-only's budget"
        )
    if exp.match == "real_epochs" and "topup" in exp.ratios:
        raise GanaugError(
            f"{source}: experiments.ratios: topup adds as many images as the data needs, so no real-only "
            "row can match its epochs; use match: steps"
        )
    if exp.match == "real_epochs" and (unmatched := [r for r in exp.ratios if r not in exp.baseline_at]):
        raise GanaugError(
            f"{source}: experiments.baseline_at: match: real_epochs trains a {unmatched[0]:g}x run for more "
            f"steps than real-only; add its ratio so a real-only row has the same steps "
            f"(e.g. baseline_at: {[0, *exp.ratios]}) (got {exp.baseline_at})"
        )
    return params


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.is_file():
        raise GanaugError(f"{path}: params file not found (expected a YAML file in the project root)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise GanaugError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if raw is not None and not isinstance(raw, dict):
        raise GanaugError(f"{path}: expected a mapping of sections (data, train, mlflow), got {type(raw).__name__}")
    return parse_params(raw, str(path))


def flatten(params: Params) -> dict[str, object]:
    """'train.augment.hflip' -> value, for MLflow."""
    out: dict[str, object] = {}

    def walk(prefix: str, value):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            out[prefix] = value

    walk("", params.model_dump())
    return out
