"""What params.yaml plans: the experiment modes (``MODES``), one run (``RunSpec``), every planned run, the DVC stage
each runs in, and which optional stages the planned runs need. Pure: nothing here reads or writes a file.

A mode's rows are (method, amount) pairs: ``method`` an entry of its method registry (a ``VARIANTS`` baseline or a
``SAMPLERS`` sampler), ``amount`` what its mode says (a budget, a ratio, a fraction, a count, a word). A row's id,
``<mode>/<method>/<amount>`` (e.g. ``augment/random/1``), names it in every file and tag; its display label is made
only when a report is rendered (ganaug.report.rows). dvc.yaml's experiment matrices are written from ``MODES`` by
``python -m ganaug.pipeline --write``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ganaug import paths
from ganaug.errors import GanaugError
from ganaug.experiment.variants import VARIANTS
from ganaug.sampling.samplers import SAMPLERS

OWN = "own"  # the amount of an own-mode run: the sampler decides it
TOPUP = "topup"  # the amount of an augment run that fills every class up to the largest one's count


@dataclass(frozen=True)
class Axis:
    """A matrix axis of a mode's dvc.yaml stage: one stage per entry of the list ``experiments.<param>``."""

    name: str  # the matrix key (``${item.<name>}`` in the stage)
    param: str

    def values(self, exp) -> list[str]:
        return [str(v) for v in getattr(exp, self.param)]

    @property
    def dvc(self) -> str:
        return f"${{item.{self.name}}}"


@dataclass(frozen=True)
class Fixed:
    """One value for every stage of the mode: ``experiments.<param>`` (a name, not a list)."""

    param: str

    def values(self, exp) -> list[str]:
        return [str(getattr(exp, self.param))]

    @property
    def dvc(self) -> str:
        return f"${{experiments.{self.param}}}"


@dataclass(frozen=True)
class Word:
    """An amount that is a word, the same for every run of the mode (``own``: the sampler decides)."""

    word: str

    def values(self, exp) -> list[str]:
        return [self.word]

    @property
    def dvc(self) -> str:
        return self.word


SEED = Axis("seed", "seeds")


@dataclass(frozen=True)
class Mode:
    """A kind of experiment row: the registry its methods come from, and the params that list its methods and its
    amounts, which are also its dvc.yaml stage's matrix axes (in that order, the seed last)."""

    name: str
    method_kind: str  # "variant" (VARIANTS) or "sampler" (SAMPLERS)
    methods: Axis | Fixed
    amounts: Axis | Word
    words: tuple[str, ...] = ()  # amounts that are words besides numbers (a Word amount is one)

    @property
    def registry(self) -> dict:
        return VARIANTS if self.method_kind == "variant" else SAMPLERS

    @property
    def axes(self) -> list[Axis]:
        """The matrix of its dvc.yaml stage; DVC names each stage ``<mode>@`` + the axes' values joined by '-'."""
        return [a for a in (self.methods, self.amounts, SEED) if isinstance(a, Axis)]

    @property
    def cmd(self) -> str:
        return f"python -m ganaug.stages.experiment {self.name} {self.methods.dvc} {self.amounts.dvc} {SEED.dvc}"

    def rows(self, exp) -> list[tuple[str, str]]:
        """The (method, amount) rows params.yaml defines for this mode."""
        return [(m, a) for m in self.methods.values(exp) for a in self.amounts.values(exp)]

    def check_amount(self, amount: str) -> None:
        if isinstance(self.amounts, Word):
            if amount != self.amounts.word:
                raise GanaugError(
                    f"experiment amount '{amount}': mode {self.name} takes '{self.amounts.word}' "
                    "(the sampler chooses the size)"
                )
            return
        if amount in self.words:
            return
        try:
            float(amount)
        except ValueError:
            raise GanaugError(f"experiment amount '{amount}': expected a number") from None


MODES: dict[str, Mode] = {
    m.name: m
    for m in (  # in the order planned_runs lists their runs
        # real images only, a VARIANTS entry, at each step budget (x the real set's steps; 0: its own)
        Mode("baseline", "variant", Axis("variant", "baselines"), Axis("budget", "baseline_at")),
        # real + amount x the real set (paper 000; topup: every class up to the largest)
        Mode("augment", "sampler", Axis("sampler", "samplers"), Axis("ratio", "ratios"), words=(TOPUP,)),
        # a fraction of each class swapped for synthetic (paper 001)
        Mode("replace", "sampler", Fixed("replace_sampler"), Axis("fraction", "replace")),
        # a fixed number of synthetic images added (paper 004)
        Mode("count", "sampler", Fixed("count_sampler"), Axis("n", "counts")),
        # the subset a sampler keeps on its own (paper 000's RL agent)
        Mode("own", "sampler", Axis("sampler", "own"), Word(OWN)),
    )
}


def row_id(mode: str, method: str, amount: str) -> str:
    """A row's id in every file and tag: ``<mode>/<method>/<amount>``, amount as params.yaml writes it."""
    return f"{mode}/{method}/{amount}"


REAL_ONLY_ID = row_id("baseline", "real", "0")  # plain real-only at its own budget: what every row is compared with


@dataclass(frozen=True)
class RunSpec:
    mode: str  # a MODES entry
    method: str  # the entry of the mode's method registry: a variant (baseline) or a sampler (the rest)
    amount: str  # ratio / fraction / count / word exactly as params.yaml (and so the DVC stage name) writes it
    seed: int

    def __post_init__(self):
        if self.mode not in MODES:
            raise GanaugError(f"unknown experiment mode '{self.mode}' (expected one of {', '.join(MODES)})")
        mode = MODES[self.mode]
        if self.method not in mode.registry:
            raise GanaugError(
                f"experiment mode {self.mode}: unknown {mode.method_kind} '{self.method}' "
                f"(expected one of {', '.join(mode.registry)})"
            )
        mode.check_amount(self.amount)

    @property
    def row_id(self) -> str:
        return row_id(self.mode, self.method, self.amount)

    @property
    def sampler(self) -> str | None:
        """The sampler that chooses this run's synthetic images (None for a real-only run)."""
        return self.method if MODES[self.mode].method_kind == "sampler" else None

    @property
    def variant(self) -> str | None:
        """The real-only baseline this run is (None for a run with synthetic images)."""
        return self.method if MODES[self.mode].method_kind == "variant" else None

    @property
    def key(self) -> str:
        """Unique within the mode; the folder name under reports/runs/<mode>/ and models/classifiers/<mode>/."""
        return f"{self.method}-{self.amount}-s{self.seed}"

    @property
    def dvc_stage(self) -> str:
        mode = MODES[self.mode]
        values = {mode.methods: self.method, mode.amounts: self.amount, SEED: str(self.seed)}
        return f"{self.mode}@" + "-".join(values[axis] for axis in mode.axes)

    @property
    def synthetic(self) -> bool:
        return self.sampler is not None

    @property
    def selection_path(self) -> Path:
        return paths.SELECTED / self.mode / f"{self.key}.parquet"  # written by this run's own stage

    @property
    def report_dir(self) -> Path:
        return paths.RUNS / self.mode / self.key

    @property
    def model_dir(self) -> Path:
        return paths.CLASSIFIERS / self.mode / self.key


def planned_runs(params) -> list[RunSpec]:
    """Every experiment run the current params define: the runs of dvc.yaml's experiment stages, whose matrices are
    written from MODES. The report reads exactly these runs, so a metrics.json left on disk by other params is never
    counted."""
    exp = params.experiments
    return [
        RunSpec(mode.name, method, amount, seed)
        for mode in MODES.values()
        for method, amount in mode.rows(exp)
        for seed in exp.seeds
    ]


# stages whose output only some samplers read (-> whether a sampler reads it); the plan stage writes which planned
# runs need each, and a stage no run needs writes its empty outputs instead of training
OPTIONAL_STAGES: dict[str, Callable] = {
    "rl_policy": lambda sampler: sampler.reads_rl,
    "projection": lambda sampler: sampler.source == "projection",
    "pseudo_label": lambda sampler: sampler.source == "pseudo",
    "retrieval": lambda sampler: sampler.source == "retrieval",
}


def optional_stage_plan(params) -> dict[str, dict]:
    """Each optional stage -> ``needed_by``: the planned runs' samplers that read its output (empty: no run needs
    it), and ``readers``: every sampler that would."""
    used = sorted({spec.sampler for spec in planned_runs(params) if spec.synthetic})
    return {
        stage: {
            "needed_by": [s for s in used if reads(SAMPLERS[s])],
            "readers": [s for s in SAMPLERS if reads(SAMPLERS[s])],
        }
        for stage, reads in OPTIONAL_STAGES.items()
    }


def recipe(params) -> dict:
    """The knobs every training stage depends on (dvc.yaml lists them for each) besides its row
    (mode, method, amount) and seed: the experiments' schedule and synthetic-image handling, and
    the whole training config. Runs that differ in any are different experiments, never averaged."""
    exp = params.experiments
    return {
        "epochs": exp.epochs or params.train.epochs,
        "match": exp.match,
        "synthetic_weight": exp.synthetic_weight,
        "synthetic_labels": exp.synthetic_labels,
        "finetune_epochs": exp.finetune_epochs,
        "recipe": exp.recipe,
        "train": params.train.recorded(exclude={"seed", "epochs"}),
    }
