"""What every sweep shares: params with ``-S`` overrides applied, experiment names, running one DVC
experiment, reading a finished experiment's files, and pairing a sweep table's rows with its references over seeds
(one Holm family per table)."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
from pathlib import Path

import pandas as pd

from ganaug import paths
from ganaug.errors import GanaugError
from ganaug.report.cells import MISSING, signed_points
from ganaug.report.stats import holm, paired, verdict

OUT = paths.REPORT / "sweep"


def experiment_name(per_class: int | str, overrides: list[str], sweep: str) -> str:
    """<sweep>-<value>, plus a short hash of any extra overrides, so different sweeps never collide."""
    suffix = hashlib.md5("\n".join(overrides).encode()).hexdigest()[:6] if overrides else ""
    return f"{sweep}-{per_class}" + (f"-{suffix}" if suffix else "")


def with_overrides(overrides: list[str], path: str = "params.yaml", refused: tuple[str, ...] = ()):
    """params.yaml with ``-S key=value`` overrides applied (values parsed as YAML, as DVC does)."""
    import yaml

    from ganaug.params import parse_params

    raw = yaml.safe_load(Path(path).read_text()) or {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise GanaugError(f"sweep: -S {item!r}: expected key=value (as for dvc exp run -S)")
        if key in refused:
            raise GanaugError(f"sweep: -S {key}: the sweep sets it per size; pass sizes with --per-class instead")
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return parse_params(raw, f"{path} with -S {' '.join(overrides)}" if overrides else path)


def run_named(name: str, sets: list[str], dvc: str = "dvc", targets: tuple[str, ...] = ()) -> str:
    existing = subprocess.run([dvc, "exp", "list", "--name-only"], capture_output=True, text=True).stdout.split()
    if name in existing:  # the same sweep point again: replace it (same params, so mostly DVC's run cache)
        subprocess.run([dvc, "exp", "remove", name], check=True, capture_output=True)
    cmd = [dvc, "exp", "run", "--temp", "-n", name, *(a for s in sets for a in ("-S", s)), *targets]
    print(f"sweep: {' '.join(cmd)}", flush=True)
    proc = subprocess.run(cmd)
    if proc.returncode != 0:
        raise GanaugError(f"sweep: experiment {name} failed (exit {proc.returncode}); see the output above")
    return name


def finished_experiments(dvc: str = "dvc") -> set[str]:
    """The names of every DVC experiment of the repository, on any commit."""
    out = subprocess.run([dvc, "exp", "list", "--all-commits", "--name-only"], capture_output=True, text=True).stdout
    return set(out.split())


def read_summary(experiment: str, path: str = "reports/summary.json") -> dict:
    """reports/summary.json (every row's per-seed accuracies, keyed by row id) of a finished experiment, or another of
    its files."""
    import dvc.api

    try:
        return json.loads(dvc.api.read(path, rev=experiment))
    except Exception as err:  # dvc raises several types for a missing revision or file
        raise GanaugError(
            f"sweep: {path} of experiment {experiment}: not readable ({type(err).__name__}); "
            "run the sweep without --report-only first"
        ) from None


def seed_series(row: dict) -> pd.Series:
    """A summary.json row's accuracies, indexed by seed (what ``paired`` matches on)."""
    return pd.Series({int(k): v for k, v in row["seeds"].items()})


def versus(ref: str, a: pd.Series | None, b: pd.Series | None) -> dict:
    """The columns of one row against reference ``ref``: ``vs <ref>`` (the mean paired difference over the seeds both
    have), its 95% CI and its p-value; NaN when there is no such reference (``b`` None), never a made-up value."""
    d = paired(a, b) if a is not None and b is not None else {"diff": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    return {
        f"vs {ref}": d["diff"],
        f"vs {ref} ci_low": d["ci_low"],
        f"vs {ref} ci_high": d["ci_high"],
        f"p {ref}": d.get("p", math.nan),
    }


def holm_verdicts(table: pd.DataFrame, refs: list[str]) -> pd.DataFrame:
    """``p_holm <ref>`` and ``verdict <ref>`` for every ``versus`` column set in ``table``: Holm's adjustment over every
    comparison of the table at once (one family: the sweep's claims), untested ones (NaN) left out of it."""
    refs = [r for r in refs if f"p {r}" in table]
    if not refs:
        return table
    adjusted = holm(pd.concat([table[f"p {r}"] for r in refs]).to_numpy())
    for i, ref in enumerate(refs):
        table[f"p_holm {ref}"] = adjusted[i * len(table) : (i + 1) * len(table)]
        table[f"verdict {ref}"] = [
            None if math.isnan(p) else verdict(d, p, n)
            for d, p, n in zip(table[f"vs {ref}"], table[f"p_holm {ref}"], table["n"])
        ]
    return table


def versus_cell(row, ref: str) -> str:
    """A ``versus`` comparison in a sweep's markdown: difference in points [95% CI] verdict, or a dash."""
    if pd.isna(row.get(f"verdict {ref}")):
        return MISSING
    low, high = signed_points(row[f"vs {ref} ci_low"]), signed_points(row[f"vs {ref} ci_high"])
    return f"{signed_points(row[f'vs {ref}'])} [{low}, {high}] {row[f'verdict {ref}']}"
