"""Tables from the experiment runs the current params define (shape of paper 000's Tables 2 and 3).

One row per id (mode, method, amount): mean, std, n and 95% CI of test accuracy over seeds, the
optimiser steps it trained for, per-class means. Then the comparisons the table's verdict rests on:
every row against real-only at the same number of steps, every sampler against random at the same
ratio, each a paired difference over shared seeds with a Holm-adjusted p-value and a verdict.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ganaug.errors import GanaugError
from ganaug.experiment.plan import row_id
from ganaug.report.cells import accuracy_cell, ci_cell, signed_points
from ganaug.report.rows import MODE_ROWS, REAL_ONLY, VARIANT_ROWS, label
from ganaug.report.stats import NOT_TESTED, holm, paired, summarize, verdict

DIFFERENT_BUDGETS = "not compared: no real-only row at the same steps"


def tail_classes(train_counts: dict[str, int]) -> list[str]:
    """The tail third of the classes: the ceil(C / 3) with the fewest real training images, and every
    class tied with the last of them; none when every class has as many (a balanced set has no tail)."""
    if len(set(train_counts.values())) <= 1:
        return []
    names = list(train_counts)
    order = sorted(range(len(names)), key=lambda i: (train_counts[names[i]], i))
    cut = train_counts[names[order[math.ceil(len(names) / 3) - 1]]]
    return [names[i] for i in order if train_counts[names[i]] <= cut]


def collect_runs(runs_dir: Path, specs, recipe: dict | None = None, tail: list[str] | None = None) -> pd.DataFrame:
    """One row per planned run (``specs``: ganaug.experiment.plan.planned_runs), read from
    ``runs_dir/<mode>/<key>/metrics.json``. Files of runs the params do not define are never read;
    a planned run that is missing, was trained with another ``recipe``, on other real data or from
    another pool than the rest is an error. ``tail``: classes whose mean accuracy is the row's
    ``tail_accuracy``."""
    rows, data = [], {}
    for spec in specs:
        path = runs_dir / spec.mode / spec.key / "metrics.json"
        if not path.is_file():
            raise GanaugError(f"{path}: missing; run its stage first (`dvc repro {spec.dvc_stage}`)")
        try:
            m = json.loads(path.read_text())
            row = {
                k: m[k]
                for k in (
                    "mode",
                    "method",
                    "amount",
                    "seed",
                    "test_accuracy",
                    "val_accuracy",
                    "n_real",
                    "n_synthetic",
                    "steps",
                )
            }
            run_recipe, inputs = m["recipe"], m["inputs"]
        except (ValueError, KeyError) as err:
            raise GanaugError(
                f"{path}: not a run's metrics.json ({err}); re-run its stage (`dvc repro {spec.dvc_stage}`)"
            ) from None
        if (row["mode"], row["method"], row["amount"], row["seed"]) != (
            spec.mode,
            spec.method,
            spec.amount,
            spec.seed,
        ):
            raise GanaugError(
                f"{path}: holds run {row['mode']}/{row['method']}-{row['amount']}-s{row['seed']}, not {spec.key}"
            )
        if recipe is not None and run_recipe != recipe:
            knob = next(k for k in recipe if run_recipe.get(k) != recipe[k])
            raise GanaugError(
                f"{path}: trained with {knob} = {run_recipe.get(knob)!r} but params.yaml says {recipe[knob]!r} "
                f"(a stale run; `dvc repro {spec.dvc_stage}`)"
            )
        for name in ("data/prepared", "data/synthetic/pool", "data/synthetic/projection"):
            if name in inputs:  # every run of one report used the same real data and the same pools
                data.setdefault(name, {}).setdefault(inputs[name], path)
        row["run_dir"] = str(path.parent)
        # the mean per-class accuracy: on an imbalanced test set, what the small classes get counts as much
        row["balanced_accuracy"] = float(np.mean(list(m["per_class_accuracy"].values())))
        if tail:
            row["tail_accuracy"] = float(np.mean([m["per_class_accuracy"][c] for c in tail]))
        row.update({f"acc.{c}": a for c, a in m["per_class_accuracy"].items()})
        rows.append(row)
    if not rows:
        raise GanaugError(
            "no experiment runs to report: experiments.baselines, samplers, replace and counts are all empty"
        )
    for name, seen in data.items():
        if len(seen) > 1:
            first, other = list(seen.values())[:2]
            what = "real data" if name == "data/prepared" else f"a different {name}"
            raise GanaugError(
                f"{other}: trained on {'other ' + what if name == 'data/prepared' else what} than {first} "
                f"({name} differs); `dvc repro` them all"
            )
    return pd.DataFrame(rows)


def by_row(runs: pd.DataFrame):
    """The runs grouped by row, (mode, method, amount) -> its seeds' runs, in the runs' order."""
    return runs.groupby(["mode", "method", "amount"], sort=False)


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per row: mean, std, n, 95% CI over seeds, steps; per-class accuracy columns are means."""
    class_cols = [c for c in runs.columns if c.startswith("acc.")]
    rows = []
    for (mode, method, amount), g in by_row(runs):
        if g["steps"].nunique() != 1:  # a row is one recipe: its seeds must have trained equally long
            raise GanaugError(
                f"row {row_id(mode, method, amount)}: seeds trained for different steps {sorted(g['steps'].unique())}"
            )
        balanced = summarize(g["balanced_accuracy"])
        tail = (
            {"tail": g["tail_accuracy"].mean(), "tail_std": summarize(g["tail_accuracy"])["std"]}
            if "tail_accuracy" in g
            else {}
        )
        rows.append(
            {
                "id": row_id(mode, method, amount),
                "row": label(mode, method, amount),
                "mode": mode,
                "method": method,
                "amount": amount,
                **summarize(g["test_accuracy"]),
                "balanced": balanced["mean"],
                "balanced_std": balanced["std"],
                **tail,
                "val": g["val_accuracy"].mean(),
                "steps": int(g["steps"].iloc[0]),
                "n_real": int(g["n_real"].iloc[0]),
                "n_synthetic": int(g["n_synthetic"].iloc[0]),
                **g[class_cols].mean().to_dict(),
            }
        )
    table = pd.DataFrame(rows)
    # a top-up row ('topup') after the numeric ratios
    order = np.lexsort(
        (
            pd.to_numeric(table["amount"], errors="coerce").fillna(np.inf),
            table["method"],
            table["mode"].map({mode: rows.order for mode, rows in MODE_ROWS.items()}),
        )
    )
    return table.iloc[order].reset_index(drop=True)


def real_only_row(table: pd.DataFrame, steps: int | None = None) -> pd.Series | None:
    """The plain real-only row at ``steps`` (default: at its own budget, amount 0); None if absent."""
    base = table[(table["mode"] == "baseline") & (table["method"] == "real")]
    base = base[base["steps"] == steps] if steps is not None else base[base["amount"].astype(float) == 0]
    return base.iloc[0] if len(base) else None


def best_real_only_row(table: pd.DataFrame, steps: int) -> pd.Series | None:
    """Among the real-only rows at ``steps`` (real, resampling, logit adjustment, ...), the one with the
    highest mean *validation* accuracy: the baseline a practitioner would have picked without the test set."""
    base = table[(table["mode"] == "baseline") & (table["steps"] == steps)]
    return base.loc[base["val"].idxmax()] if len(base) else None


NOT_APPLICABLE = object()  # a comparison that does not apply to a row (None: applies, but nothing to compare with)


def first(rows: pd.DataFrame):
    return rows.iloc[0] if len(rows) else NOT_APPLICABLE


def is_real_only(row) -> bool:
    return row["mode"] == "baseline" and row["method"] == "real"


def vs_real_only(row, table):
    """Every row but plain real-only itself, against plain real-only at the same steps."""
    return NOT_APPLICABLE if is_real_only(row) else real_only_row(table, row["steps"])


def vs_best_real_only(row, table):
    """A synthetic row against the real-only variant with the best validation accuracy, when that is not plain."""
    best = best_real_only_row(table, row["steps"])
    if row["mode"] == "baseline" or best is None or best["method"] == "real":
        return NOT_APPLICABLE
    return best


def vs_no_augmentation(row, table):
    """A real-only variant marked ``vs_plain`` (rotated copies, paper 004) against the un-augmented baseline."""
    if row["mode"] != "baseline" or not VARIANT_ROWS[row["method"]].vs_plain:
        return NOT_APPLICABLE
    plain = (table["mode"] == "baseline") & (table["method"] == "plain") & (table["steps"] == row["steps"])
    return first(table[plain])


def vs_random(row, table):
    """A sampler's row against random's at the same amount, in the modes that compare samplers. Not pseudo-labelling
    or retrieval: random's row faces them already (vs_pseudo_label, vs_retrieval), and the same pair twice would count
    twice in Holm's family."""
    if not MODE_ROWS[row["mode"]].vs_random or row["method"] in ("random", "pseudo-label", "retrieval"):
        return NOT_APPLICABLE
    same = (table["mode"] == row["mode"]) & (table["method"] == "random") & (table["amount"] == row["amount"])
    return first(table[same])


def vs_pseudo_label(row, table):
    """A synthetic row against pseudo-labelling the unlabelled images (data.unlabelled) at the same amount, when
    that ran: a generator that learned from those images has to beat simply labelling them with the scorer."""
    if row["mode"] == "baseline" or row["method"] == "pseudo-label":
        return NOT_APPLICABLE
    same = (table["mode"] == row["mode"]) & (table["method"] == "pseudo-label") & (table["amount"] == row["amount"])
    return first(table[same])


def vs_retrieval(row, table):
    """A synthetic row against retrieving real unlabelled images at the same amount, when that ran (Geng et al.
    2024: real images retrieved for a class match or beat generated ones). Not pseudo-labelling: retrieval's row faces
    it already (vs_pseudo_label), and the same pair twice would count twice in Holm's family."""
    if row["mode"] == "baseline" or row["method"] in ("retrieval", "pseudo-label"):
        return NOT_APPLICABLE
    same = (table["mode"] == row["mode"]) & (table["method"] == "retrieval") & (table["amount"] == row["amount"])
    return first(table[same])


# every comparison the table's verdicts rest on, in the order each row lists them: (kind, its reference row)
COMPARISONS = (
    ("vs real-only", vs_real_only),
    ("vs best real-only", vs_best_real_only),
    ("vs no augmentation", vs_no_augmentation),
    ("vs random", vs_random),
    ("vs pseudo-label", vs_pseudo_label),
    ("vs retrieval", vs_retrieval),
)


def comparisons(runs: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Every row vs real-only at the same steps; when several real-only variants ran, every synthetic
    row also vs the best of them by validation accuracy (if that is not plain real-only); every
    augment sampler vs random at the same ratio; every synthetic row vs pseudo-labelling and vs retrieval at the
    same amount when they ran; rotated copies vs the un-augmented baseline (paper 004's comparison) when both
    ran. Paired over shared seeds; Holm's adjustment over every tested comparison in the table (no pair twice)."""
    acc = {row_id(*key): g.set_index("seed")["test_accuracy"] for key, g in by_row(runs)}
    out = []

    def add(row, ref, kind):
        entry = {
            "id": row["id"],
            "reference_id": None if ref is None else ref["id"],
            "row": row["row"],
            "reference": None if ref is None else ref["row"],
            "kind": kind,
            "steps": row["steps"],
        }
        if ref is None:
            out.append(
                {
                    **entry,
                    "n": 0,
                    "diff": math.nan,
                    "ci_low": math.nan,
                    "ci_high": math.nan,
                    "p": math.nan,
                    "note": DIFFERENT_BUDGETS,
                }
            )
            return
        d = paired(acc[row["id"]], acc[ref["id"]])
        out.append({**entry, **{k: d[k] for k in ("n", "diff", "ci_low", "ci_high", "p")}, "note": ""})

    for _, row in table.iterrows():
        for kind, find in COMPARISONS:
            ref = find(row, table)
            if ref is not NOT_APPLICABLE:
                add(row, ref, kind)
    comp = pd.DataFrame(
        out,
        columns=[
            "id",
            "reference_id",
            "row",
            "reference",
            "kind",
            "steps",
            "n",
            "diff",
            "ci_low",
            "ci_high",
            "p",
            "note",
        ],
    )
    comp["p_holm"] = holm(comp["p"].to_numpy()) if len(comp) else []
    comp["verdict"] = [
        note or verdict(d, p, n) for note, d, p, n in zip(comp["note"], comp["diff"], comp["p_holm"], comp["n"])
    ]
    return comp.drop(columns="note")


def to_markdown(table: pd.DataFrame, comp: pd.DataFrame, title: str = "Test accuracy on the real test set") -> str:
    """The accuracy table (per-class means, best marked in bold) and the comparisons with verdicts."""
    class_cols = [c for c in table.columns if c.startswith("acc.")]
    compared = table["mode"].map(lambda m: MODE_ROWS[m].bold).astype(bool)
    # per-class bests only: the overall winner is what the comparisons' verdicts say, not the largest mean
    best = {col: table.loc[compared, col].max() if compared.any() else np.nan for col in class_cols}

    def cell(row, col, text):
        return f"**{text}**" if compared[row.name] and np.isclose(row[col], best[col]) else text

    has_tail = "tail" in table.columns
    header = [
        "run",
        "real",
        "synthetic",
        "steps",
        "n",
        "accuracy (mean ± std)",
        "95% CI",
        "balanced accuracy",
        *(["tail-third accuracy"] if has_tail else []),
        *(c.removeprefix("acc.") for c in class_cols),
    ]
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in table.iterrows():
        cells = [
            row["row"],
            str(row["n_real"]),
            str(row["n_synthetic"]),
            str(row["steps"]),
            str(row["n"]),
            accuracy_cell(row["mean"], row["std"], row["n"]),
            ci_cell(row["ci_low"], row["ci_high"]),
            accuracy_cell(row["balanced"], row["balanced_std"], row["n"]),
            *([accuracy_cell(row["tail"], row["tail_std"], row["n"])] if has_tail else []),
            *(cell(row, c, f"{100 * row[c]:.1f}") for c in class_cols),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Accuracies in %, over seeds (95% CI: t interval of the mean); balanced accuracy: the mean of the "
        "per-class accuracies (the same as accuracy on a class-balanced test set); "
        + (
            "tail-third accuracy: the mean accuracy of the third of the classes with the fewest real training images; "
            if has_tail
            else ""
        )
        + "per-class columns are means; "
        "bold: the best per-class accuracy among the real-only, augmentation, own-choice and fixed-count rows.",
        "",
    ]
    if len(comp):
        lines += [
            "### Comparisons (paired over seeds, same optimiser steps)",
            "",
            "| comparison | steps | n | difference (points) | 95% CI | p | p (Holm) | verdict |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for _, c in comp.iterrows():
            tested = not math.isnan(c["p"])
            name = f"{c['row']} {c['kind']}"
            if c["kind"] in ("vs real-only", "vs best real-only") and c["reference"] not in (None, REAL_ONLY):
                name += f" ({c['reference']})"
            diff = signed_points(c["diff"])
            p, p_holm = (f"{c['p']:.3g}", f"{c['p_holm']:.3g}") if tested else ("—", "—")
            lines.append(
                f"| {name} | {c['steps']} | {c['n']} | {diff} | {ci_cell(c['ci_low'], c['ci_high'])} | {p} "
                f"| {p_holm} | {c['verdict']} |"
            )
        lines += [
            "",
            f"Verdict from the Holm-adjusted p-value (family: the {int(comp['p'].notna().sum())} tested comparisons "
            "above, two-sided paired t-test, α = 0.05): *better* / *worse* when below α, else *no clear difference*; "
            f"'{NOT_TESTED}' when fewer than 2 seeds are shared.",
        ]
    return "\n".join(lines) + "\n"


def best_augmented(table: pd.DataFrame) -> pd.Series | None:
    """The augmentation row with the highest mean accuracy, or None."""
    aug = table[table["mode"] == "augment"]
    return aug.loc[aug["mean"].idxmax()] if len(aug) else None


def _num(x):
    return None if isinstance(x, float) and math.isnan(x) else round(float(x), 5)


def details(table: pd.DataFrame, comp: pd.DataFrame, runs: pd.DataFrame) -> dict:
    """Everything behind the table, for other tools (the low-data sweep reads it from each
    experiment): every row's statistics and per-seed accuracies, every comparison and verdict."""
    seeds = {row_id(*key): g.set_index("seed")["test_accuracy"] for key, g in by_row(runs)}
    rows = {
        r["id"]: {
            "row": r["row"],
            "mode": r["mode"],
            "method": r["method"],
            "amount": r["amount"],
            "mean": _num(r["mean"]),
            "balanced_mean": _num(r["balanced"]),
            **({"tail_mean": _num(r["tail"])} if "tail" in r else {}),
            "std": _num(r["std"]),
            "n": int(r["n"]),
            "steps": int(r["steps"]),
            "ci": [_num(r["ci_low"]), _num(r["ci_high"])],
            "seeds": {str(s): a for s, a in seeds[r["id"]].items()},
        }
        for _, r in table.iterrows()
    }
    comparisons = [
        {
            "id": c["id"],
            "reference_id": c["reference_id"],
            "row": c["row"],
            "reference": c["reference"],
            "kind": c["kind"],
            "n": int(c["n"]),
            "diff": _num(c["diff"]),
            "ci": [_num(c["ci_low"]), _num(c["ci_high"])],
            "p": _num(c["p"]),
            "p_holm": _num(c["p_holm"]),
            "verdict": c["verdict"],
        }
        for _, c in comp.iterrows()
    ]
    return {"rows": rows, "comparisons": comparisons}


def headline(table: pd.DataFrame, comp: pd.DataFrame) -> dict:
    """The few numbers `make run` prints and DVC tracks as metrics (kept small: `dvc exp show`
    shows every key): real-only, the highest augmented row against it, the verdict counts."""
    out: dict = {"verdicts": {v: int(n) for v, n in comp["verdict"].value_counts().sort_index().items()}}
    base, best = real_only_row(table), best_augmented(table)
    if base is not None:
        out["real_only"] = _num(base["mean"])
    if best is not None:
        out["best_augmented"] = {"id": best["id"], "row": best["row"], "accuracy": _num(best["mean"])}
        for kind, key in (("vs real-only", "best_vs_real_only"), ("vs best real-only", "best_vs_best_real_only")):
            vs = comp[(comp["id"] == best["id"]) & (comp["kind"] == kind)]
            if len(vs):
                c = vs.iloc[0]
                out[key] = {
                    "diff": _num(c["diff"]),
                    "ci": [_num(c["ci_low"]), _num(c["ci_high"])],
                    "p_holm": _num(c["p_holm"]),
                    "verdict": c["verdict"],
                    "n": int(c["n"]),
                }
                if kind == "vs best real-only":
                    out[key]["reference"] = c["reference"]
    return out
