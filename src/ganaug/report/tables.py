"""Tables from the experiment runs' metrics.json files (shape of paper 000's Tables 2 and 3):
one row per (mode, sampler, amount), mean +/- std of test accuracy over seeds, per-class means."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ganaug.errors import GanaugError

MODE_ORDER = {"baseline": 0, "augment": 1, "replace": 2, "count": 3, "lowdata": 4}


def collect_runs(runs_dir: Path) -> pd.DataFrame:
    """One row per run: mode, sampler, amount, seed, per_class, test_accuracy, acc.<class>..."""
    rows = []
    for path in sorted(runs_dir.glob("*/*/metrics.json")):
        try:
            m = json.loads(path.read_text())
            row = {k: m[k] for k in ("mode", "sampler", "amount", "seed", "test_accuracy", "n_real", "n_synthetic")}
        except (ValueError, KeyError) as err:
            raise GanaugError(f"{path}: not a run's metrics.json ({err})") from None
        row["per_class"] = m.get("per_class")
        row["match"] = m.get("match")
        row["run_dir"] = str(path.parent)
        row.update({f"acc.{c}": a for c, a in m["per_class_accuracy"].items()})
        rows.append(row)
    if not rows:
        raise GanaugError(f"{runs_dir}: no runs (*/*/metrics.json) to report; run the experiment stages first")
    return pd.DataFrame(rows)


def row_name(mode: str, sampler: str, amount: str, per_class=None) -> str:
    if mode == "baseline":
        return "0x real" if sampler == "real" else "0x real + rotation"
    if mode == "augment":
        return f"{sampler} {float(amount):g}x"
    if mode == "replace":
        return f"{sampler} replace {float(amount):.0%}"
    if mode == "count":
        return f"{sampler} +{int(float(amount))}"
    return f"{per_class}/class {sampler}"


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per row; per-class accuracy columns are means."""
    runs = runs.assign(per_class=runs["per_class"].fillna(0).astype(int))
    class_cols = [c for c in runs.columns if c.startswith("acc.")]
    keys = ["mode", "sampler", "amount", "per_class"]
    grouped = runs.groupby(keys, sort=False)
    table = grouped["test_accuracy"].agg(mean="mean", std=lambda s: s.std(ddof=1) if len(s) > 1 else 0.0, seeds="count")
    table = table.join(grouped[class_cols].mean()).join(grouped[["n_real", "n_synthetic"]].first()).reset_index()
    table.insert(0, "row", [row_name(m, s, a, p) for m, s, a, p in zip(table["mode"], table["sampler"], table["amount"], table["per_class"])])
    order = np.lexsort((table["amount"].astype(float), table["sampler"], table["per_class"], table["mode"].map(MODE_ORDER)))
    return table.iloc[order].reset_index(drop=True)


def to_markdown(table: pd.DataFrame, title: str = "Test accuracy on the real test set") -> str:
    """Markdown table; the best value in each accuracy column (over baseline + augment rows) in bold."""
    class_cols = [c for c in table.columns if c.startswith("acc.")]
    compared = table["mode"].isin(["baseline", "augment", "count"])
    best = {col: table.loc[compared, col].max() if compared.any() else np.nan for col in ["mean", *class_cols]}

    def cell(row, col, text):
        return f"**{text}**" if compared[row.name] and np.isclose(row[col], best[col]) else text

    header = ["run", "real", "synthetic", "accuracy (mean ± std)", "seeds", *(c.removeprefix("acc.") for c in class_cols)]
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in table.iterrows():
        cells = [row["row"], str(int(row["n_real"])), str(int(row["n_synthetic"])),
                 cell(row, "mean", f"{100 * row['mean']:.2f} ± {100 * row['std']:.2f}"), str(int(row["seeds"])),
                 *(cell(row, c, f"{100 * row[c]:.1f}") for c in class_cols)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Accuracies in %; bold: the best among the real-only, augmentation and fixed-count rows."]
    return "\n".join(lines) + "\n"


def data_saved(table: pd.DataFrame, reference: float) -> dict | None:
    """Low-data sweep: the smallest real set per class that, augmented, reaches ``reference``
    (real-only accuracy at the full real set)."""
    low = table[table["mode"] == "lowdata"]
    if low.empty:
        return None
    synth = low[low["sampler"] != "real"].sort_values("per_class")
    real = low[low["sampler"] == "real"].sort_values("per_class")
    reached = synth[synth["mean"] >= reference]
    real_reached = real[real["mean"] >= reference]
    return {
        "reference_accuracy": round(float(reference), 5),
        "smallest_per_class_augmented": int(reached["per_class"].iloc[0]) if len(reached) else None,
        "smallest_per_class_real_only": int(real_reached["per_class"].iloc[0]) if len(real_reached) else None,
    }


def real_only_row(table: pd.DataFrame) -> pd.Series | None:
    """The 0x real row (first seed group), or None when no baseline ran."""
    base = table[(table["mode"] == "baseline") & (table["sampler"] == "real")]
    return base.iloc[0] if len(base) else None


def best_augmented(table: pd.DataFrame) -> pd.Series | None:
    """The augmentation row with the highest mean accuracy, or None."""
    aug = table[table["mode"] == "augment"]
    return aug.loc[aug["mean"].idxmax()] if len(aug) else None


def headline(table: pd.DataFrame) -> dict:
    """The numbers `make run` prints and DVC tracks: real-only, the best augmented row."""
    out: dict = {"rows": {r: round(float(m), 5) for r, m in zip(table["row"], table["mean"])}}
    base, best = real_only_row(table), best_augmented(table)
    if base is not None:
        out["real_only"] = round(float(base["mean"]), 5)
    if best is not None:
        out["best_augmented"] = {"row": best["row"], "accuracy": round(float(best["mean"]), 5)}
        if base is not None:
            out["best_minus_real_only"] = round(float(best["mean"] - base["mean"]), 5)
    return out
