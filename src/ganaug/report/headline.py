"""The README's headline table, written from a run's reports/summary.csv and reports/comparisons.csv, so that
the numbers on the front page are the committed run's (tests/test_docs.py rebuilds it and compares)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ganaug.report.cells import MISSING, accuracy_cell, ci_cell, signed_points


def headline_table(report: Path) -> str:
    """One line per row of the table (mean ± std, 95% CI) with its paired difference from real-only and verdict."""
    table = pd.read_csv(report / "summary.csv")
    comparisons = pd.read_csv(report / "comparisons.csv")
    vs_real = comparisons[comparisons["kind"] == "vs real-only"].set_index("row")
    n = int(table["n"].min())
    lines = [
        f"| row | accuracy % (mean ± std, {n} seeds) | 95% CI | vs real only (points, 95% CI) | verdict |",
        "|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        if r["row"] in vs_real.index:
            c = vs_real.loc[r["row"]]
            diff = f"{signed_points(c['diff'])} [{signed_points(c['ci_low'])}, {signed_points(c['ci_high'])}]"
            verdict = c["verdict"]
        else:
            diff = verdict = MISSING
        cells = [r["row"], accuracy_cell(r["mean"], r["std"], int(r["n"])), ci_cell(r["ci_low"], r["ci_high"])]
        lines.append("| " + " | ".join([*cells, diff, verdict]) + " |")
    return "\n".join(lines)
