"""Typed, validated view of params.yaml: every key's type and range. The values, and what each key means, are
params.yaml's alone: the models here have no defaults, so params.yaml is the complete file and a missing key is
refused. Tests and scripts that need other values lay overrides over it (``load_params(path, overrides)``).

Names of registry entries (samplers, baselines, architectures) are plain strings here, so that reading params
imports no sampling, experiment or GAN code; the stage that uses a name looks it up in its registry
(ganaug.registry.lookup). Missing and unknown keys, wrong types and out-of-range values are refused with one
line naming the key (e.g. ``params.yaml: data.per_class: must be a positive integer or 'all' (got -3)``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ganaug.errors import GanaugError

# the datasets (ganaug.data.sources.SOURCES, a test checks) and what train.augment.hflip: null means for each:
# a mirrored digit is another or an impossible glyph; clothes, objects and photos mirror safely
HFLIP_BY_DATASET = {"fashion-mnist": True, "mnist": False, "digits": False, "cifar10": True, "folder": True}


def _positive_or_all(v):
    if v != "all" and v < 1:
        raise ValueError(f"must be a positive integer or 'all' (got {v})")
    return v


class _Strict(BaseModel):
    # extra="forbid": a misspelt key is an error, never a silently ignored setting
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(_Strict):
    name: Literal[tuple(HFLIP_BY_DATASET)]
    root: str = Field(min_length=1)  # fetch depends on it, so every source names a folder (paths.NO_FOLDER: none)
    image_size: int = Field(ge=16, le=256)
    resize: Literal["stretch", "crop", "pad"]
    channels: Literal[1, 3] | None
    per_class: int | Literal["all"]
    val_per_class: int | float
    test_per_class: int | float
    imbalance: float | list[float] | None
    skip_corrupt: bool
    background: int = Field(ge=0, le=255)
    duplicates: Literal["keep-one", "drop"]
    unlabelled: Literal["rest", "folder"] | None
    unlabelled_root: str = Field(min_length=1)
    unlabelled_max: int | Literal["all"]
    seed: int = Field(ge=0)

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


class AugmentParams(_Strict):
    hflip: bool | None  # None until parse_params resolves it (HFLIP_BY_DATASET)
    crop_padding: int = Field(ge=0, le=16)
    rotate_degrees: float = Field(ge=0, le=180)


class TrainParams(_Strict):
    model: str
    pretrained: bool
    pretrained_path: str | None
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    optimizer: Literal["sgd", "adamw"]
    lr: float = Field(gt=0)
    momentum: float = Field(ge=0, lt=1)
    weight_decay: float = Field(ge=0)
    schedule: Literal["onecycle", "cosine", "constant"]
    label_smoothing: float = Field(ge=0, lt=1)
    augment: AugmentParams
    eval_batch_size: int = Field(ge=1)
    deterministic: bool
    seed: int = Field(ge=0)

    def recorded(self, exclude: set[str] | None = None) -> dict:
        """The config a run records (its metrics, its saved model): ``deterministic`` only when it is off, so
        runs recorded before the switch existed stay identical and comparable."""
        return self.model_dump(exclude={*(exclude or ()), *(("deterministic",) if self.deterministic else ())})


class GanParams(_Strict):
    arch: str  # a ganaug.gan.archs.ARCHS entry, looked up by the stage that builds the GAN
    pretrained: str = Field(min_length=1)  # train_gan depends on it, so it always names a folder (paths.NO_WEIGHTS)
    sd_mode: Literal["img2img", "txt2img"]
    strength: float = Field(gt=0, le=1)
    guidance_scale: float = Field(ge=0)
    steps: int = Field(ge=0)  # 0: used as loaded from gan.pretrained (ganaug.gan.archs.check_weights)
    batch_size: int = Field(ge=2)
    z_dim: int = Field(ge=1)
    g_width: int = Field(ge=4)
    d_width: int = Field(ge=4)
    min_width: int = Field(ge=4)
    balance_classes: bool
    lr_g: float = Field(gt=0)
    lr_d: float = Field(gt=0)
    beta1: float = Field(ge=0, lt=1)
    beta2: float = Field(ge=0, lt=1)
    n_dis: int = Field(ge=1)
    diffaugment: str
    ema_decay: float = Field(ge=0, lt=1)
    lecam: float = Field(ge=0)
    res_blocks: int = Field(ge=0)
    lambda_cls: float = Field(ge=0)
    lambda_rec: float = Field(ge=0)
    mapping_layers: int = Field(ge=1)
    unet_width: int = Field(ge=4)
    sample_steps: int = Field(ge=1)
    ckpt_every: int = Field(ge=1)
    eval_every: int = Field(ge=1)
    eval_samples: int = Field(ge=20)
    seed: int = Field(ge=0)

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
    pool_multiple: float = Field(gt=0)
    truncation: float | None = Field(gt=0)
    translate: bool
    include_own: bool
    max_draws: float = Field(gt=0)
    batch_size: int = Field(ge=1)
    seed: int = Field(ge=0)


class ProjectionParams(_Strict):
    per_class: int | Literal["all"]
    steps: int = Field(ge=1)
    lr: float = Field(gt=0)
    feature_weight: float = Field(ge=0)
    variants: int = Field(ge=1)
    method: Literal["random", "directions", "predictor"]
    sigma: float = Field(gt=0)
    directions: int = Field(ge=1)
    predictor_target: Literal["confidence", "realism"]
    predictor_samples: int = Field(ge=10)
    coefficients: list[float] = Field(min_length=1)
    include_reconstruction: bool
    w_plus: bool
    seed: int = Field(ge=0)

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
    batch_size: int = Field(ge=1)
    features: Literal["scorer", "clip"]


class ClipParams(_Strict):
    path: str = Field(min_length=1)  # the score and retrieval stages depend on it (paths.NO_WEIGHTS: no CLIP)
    batch_size: int = Field(ge=1)


class SelectParams(_Strict):
    diverse_keep: float = Field(gt=0, le=1)
    combined_realism_weight: float = Field(ge=0, le=1)
    balance: bool
    seed: int = Field(ge=0)


class RlParams(_Strict):
    episodes: int = Field(ge=1)
    candidates_per_class: int = Field(ge=1)
    rollouts: int = Field(ge=2)  # each rollout is rewarded against the others
    real_per_class: int = Field(ge=1)
    child_steps: int = Field(ge=1)
    child_lr: float = Field(gt=0)
    reward: Literal["sign", "difference"]
    policy_lr: float = Field(gt=0)
    keep_lr: float = Field(gt=0)
    entropy_weight: float = Field(ge=0)
    seed: int = Field(ge=0)


class ExperimentParams(_Strict):
    # sampler and baseline names: ganaug.sampling.samplers.SAMPLERS and ganaug.experiment.variants.VARIANTS entries,
    # looked up by the plan stage (ganaug.stages.plan)
    samplers: list[str]
    # Union[int, float]: 1 stays 1 (not 1.0), so names built here match the stage names DVC builds from the YAML
    ratios: list[int | float | Literal["topup"]]
    seeds: list[int] = Field(min_length=1)
    baselines: list[str]
    baseline_at: list[int | float] = Field(min_length=1)
    rotate_degrees: float = Field(gt=0, le=180)
    rotate_copies_degrees: float = Field(gt=0, le=180)
    replace: list[int | float]
    replace_sampler: str
    counts: list[int]
    count_sampler: str
    own: list[str]
    epochs: int | None = Field(ge=1)
    match: Literal["steps", "real_epochs"]
    synthetic_weight: float = Field(ge=0)
    synthetic_labels: Literal["hard", "confidence", "soft"]
    finetune_epochs: int = Field(ge=0)
    recipe: Literal["mix", "pretrain", "head-refit"]

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
    experiment: str = Field(min_length=1)


class Params(_Strict):
    data: DataParams
    train: TrainParams
    gan: GanParams
    generate: GenerateParams
    projection: ProjectionParams
    score: ScoreParams
    clip: ClipParams
    select: SelectParams
    rl: RlParams
    experiments: ExperimentParams
    mlflow: MlflowParams


def _one_line(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key '{key}' (check the spelling; see params.yaml for the known keys)"
    if first["type"] == "missing":
        return f"{source}: {key}: missing (every key is in the project's params.yaml; copy it from there)"
    msg = first["msg"].removeprefix("Value error, ")
    if "(got " not in msg:
        msg += f" (got {first.get('input')!r})"
    return f"{source}: {key}: {msg}"


def parse_params(raw: dict, source: str = "params.yaml") -> Params:
    """Validate a complete params mapping; raise GanaugError naming the first missing or bad key."""
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


def overlay(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` laid over it: a mapping merges into the section it names, any other value
    replaces; a dotted key (``gan.arch``, as ``dvc exp run -S`` and dvc.lock write them) names a nested one."""
    out = dict(base)
    for key, value in overrides.items():
        head, dot, rest = str(key).partition(".")
        if dot:
            value = {rest: value}
        below = out.get(head)
        out[head] = overlay(below, value) if isinstance(value, dict) and isinstance(below, dict) else value
    return out


def load_params(path: str | Path = "params.yaml", overrides: dict | None = None) -> Params:
    """The params file at ``path`` (stages run in the project root: its params.yaml), validated; with
    ``overrides`` laid over it first (``overlay``), the way tests and scripts ask for other values."""
    path = Path(path)
    if not path.is_file():
        raise GanaugError(f"{path}: params file not found (expected a YAML file in the project root)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise GanaugError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if raw is not None and not isinstance(raw, dict):
        raise GanaugError(f"{path}: expected a mapping of sections (data, train, mlflow), got {type(raw).__name__}")
    if overrides:
        return parse_params(overlay(raw or {}, overrides), f"{path} with overrides")
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
