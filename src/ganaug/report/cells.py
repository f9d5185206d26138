"""How the reports write numbers: accuracies and differences in percentage points, intervals, missing values."""

from __future__ import annotations

import pandas as pd

MISSING = "—"


def points(x: float) -> str:
    """An accuracy (a fraction) in points: 0.8123 -> 81.23."""
    return f"{100 * x:.2f}"


def signed_points(x: float) -> str:
    """A difference in points with its sign (+1.25, -0.30), or a dash where there is none."""
    return MISSING if pd.isna(x) else f"{100 * x:+.2f}"


def ci_cell(low: float, high: float) -> str:
    """A 95% interval of accuracies in points, or a dash where there is none (one seed)."""
    return MISSING if pd.isna(low) else f"[{points(low)}, {points(high)}]"


def accuracy_cell(mean: float, std: float, n: int) -> str:
    if n < 2:
        return f"{points(mean)} (n=1, spread not measured)"
    return f"{points(mean)} ± {points(std)}"
