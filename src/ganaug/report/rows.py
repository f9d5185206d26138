"""How the report shows an experiment row: its label (made from its id only when rendering), where its mode's rows
stand in the table, whether they compete for the per-class bests, and which extra comparisons they get. One entry
per ``ganaug.experiment.plan.MODES`` mode and per ``VARIANTS`` baseline (a test checks both cover their registry)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ganaug.experiment.plan import TOPUP

REAL_ONLY = "real only"  # the label of plain real-only, the row every other row is compared with


@dataclass(frozen=True)
class VariantRow:
    label: str
    vs_plain: bool = False  # whether its row is also compared with the un-augmented baseline ("vs no augmentation")


VARIANT_ROWS: dict[str, VariantRow] = {
    "real": VariantRow(REAL_ONLY),
    "rotate": VariantRow("real only + rotation"),
    "plain": VariantRow("real only, no augmentation"),
    # paper 004 compares rotated copies with the un-augmented baseline
    "rotated-copies": VariantRow("real only + rotated copies, no augmentation", vs_plain=True),
    "resample": VariantRow("real only, class-balanced resampling"),
    "logit-adjust": VariantRow("real only, logit-adjusted loss"),
}


def baseline_label(variant: str, amount: str) -> str:
    name = VARIANT_ROWS[variant].label
    return name if float(amount) == 0 else f"{name} (steps of {float(amount):g}x)"


@dataclass(frozen=True)
class ModeRows:
    label: Callable  # (method, amount) -> the row's label
    order: int  # where its rows stand in the report's table
    bold: bool = True  # whether its rows compete for the table's per-class bests
    vs_random: bool = False  # whether each sampler's row is also compared with random's at the same amount


MODE_ROWS: dict[str, ModeRows] = {
    "baseline": ModeRows(baseline_label, order=0),
    "augment": ModeRows(lambda m, a: f"{m} top-up" if a == TOPUP else f"{m} {float(a):g}x", order=1, vs_random=True),
    "own": ModeRows(lambda m, a: f"{m} own choice", order=2),
    # fewer real images: its per-class accuracies are not the table's contest
    "replace": ModeRows(lambda m, a: f"{m} replace {float(a):.0%}", order=3, bold=False),
    "count": ModeRows(lambda m, a: f"{m} +{int(float(a))}", order=4),
}


def label(mode: str, method: str, amount: str) -> str:
    """The row's label in the report's tables and figures."""
    return MODE_ROWS[mode].label(method, amount)
