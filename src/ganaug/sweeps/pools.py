"""`python -m ganaug.sweep pools --pool-seeds 0 1 2`: GAN + pool replicates, the stronger test.

Classifier seeds measure the noise of training on one pool; they cannot say
whether another GAN, trained the same way, would give the same verdict. Pool seed k reruns the
synthetic side with seed k (``gan.seed``, ``generate.seed``, ``projection.seed``, ``rl.seed``): a
new GAN, pool, DAPPER pool and RL policy, the real data and scorer unchanged. The unit of
replication is then the pool: per pool, the mean paired difference over the classifier seeds; over
pools, its mean, t interval and one-sample t-test, Holm-adjusted, with a verdict. (Real-only runs
do not depend on the pool and are shared by every replicate, so pooling all (pool, seed) pairs as if
independent would overstate n.) Writes reports/sweep/pools.{md,csv}.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ganaug.errors import GanaugError
from ganaug.report.cells import signed_points
from ganaug.report.stats import holm, mean_test, verdict
from ganaug.sweeps.common import OUT, experiment_name, read_summary, run_named, with_overrides


def pool_name(pool_seed: int, overrides: list[str]) -> str:
    return experiment_name(pool_seed, overrides, sweep="pool")


def pool_overrides(pool_seed: int) -> list[str]:
    """Everything synthetic reseeded: GAN, pool, DAPPER pool, RL policy. Real data and scorer unchanged."""
    return [f"{section}.seed={pool_seed}" for section in ("gan", "generate", "projection", "rl")]


def pool_differences(summaries: dict[int, dict]) -> pd.DataFrame:
    """One row per (comparison, pool): the mean over classifier seeds of the paired difference."""
    rows = []
    for pool, head in sorted(summaries.items()):
        accs = {name: pd.Series({int(k): v for k, v in r["seeds"].items()}) for name, r in head["rows"].items()}
        for c in head["comparisons"]:
            # real-only rows do not depend on the pool (the same runs in every replicate): a comparison
            # of two of them has nothing to replicate and would only inflate the Holm family
            if c["reference_id"] is None or head["rows"][c["id"]]["mode"] == "baseline":
                continue
            a, b = accs[c["id"]], accs[c["reference_id"]]
            shared = sorted(set(a.index) & set(b.index))
            rows.append(
                {
                    "id": c["id"],
                    "reference_id": c["reference_id"],
                    "row": c["row"],
                    "reference": c["reference"],
                    "kind": c["kind"],
                    "pool": pool,
                    "seeds": len(shared),
                    "diff": float((a.loc[shared] - b.loc[shared]).mean()),
                    "pool_verdict": c["verdict"],
                }
            )
    return pd.DataFrame(rows)


def pools_table(summaries: dict[int, dict]) -> pd.DataFrame:
    """Per comparison, over pool replicates: mean difference, t CI, one-sample t-test, Holm, verdict."""
    per_pool = pool_differences(summaries)
    out = []
    for (row, ref, kind), g in per_pool.groupby(["id", "reference_id", "kind"], sort=False):
        d = mean_test(g["diff"])
        out.append(
            {
                "id": row,
                "reference_id": ref,
                "row": g["row"].iloc[0],
                "reference": g["reference"].iloc[0],
                "kind": kind,
                "pools": d["n"],
                "seeds_per_pool": int(g["seeds"].min()),
                "diff": d["mean"],
                "ci_low": d["ci_low"],
                "ci_high": d["ci_high"],
                "p": d["p"],
                "per_pool": ", ".join(f"{100 * x:+.2f}" for x in g["diff"]),
                "pool_verdicts": ", ".join(g["pool_verdict"]),
            }
        )
    table = pd.DataFrame(out)
    table["p_holm"] = holm(table["p"].to_numpy())
    table["verdict"] = [verdict(d, p, n) for d, p, n in zip(table["diff"], table["p_holm"], table["pools"])]
    return table


def pools_markdown(table: pd.DataFrame) -> str:
    pts = signed_points
    lines = [
        "### Pool replicates: each comparison over independently trained GANs and pools",
        "",
        "| comparison | pools | seeds per pool | difference (points) | 95% CI over pools | p (Holm) | "
        "verdict | per pool | each pool's own verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for _, c in table.iterrows():
        p_holm = "—" if math.isnan(c["p_holm"]) else f"{c['p_holm']:.3g}"
        lines.append(
            f"| {c['row']} vs {c['reference']} | {c['pools']} | {c['seeds_per_pool']} | {pts(c['diff'])} | "
            f"[{pts(c['ci_low'])}, {pts(c['ci_high'])}] | {p_holm} | {c['verdict']} | {c['per_pool']} | "
            f"{c['pool_verdicts']} |"
        )
    lines += [
        "",
        "Unit of replication: the pool (GAN + pool + DAPPER pool + RL policy, reseeded). Per pool, the mean "
        "paired difference over the classifier seeds; over pools, a one-sample t-test, Holm-adjusted over the "
        "comparisons above (α = 0.05).",
    ]
    return "\n".join(lines) + "\n"


def build_pools_report(summaries: dict[int, dict], out: Path = OUT) -> pd.DataFrame:
    table = pools_table(summaries)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "pools.csv", index=False, float_format="%.5g")
    (out / "pools.md").write_text(pools_markdown(table))
    return table


def add_arguments(parser) -> None:
    parser.add_argument("--pool-seeds", type=int, nargs="+", required=True, help="at least 2 (e.g. 0 1 2)")


def run(args) -> Path:
    with_overrides(args.overrides)  # a bad key or value stops here, before any experiment
    if len(set(args.pool_seeds)) < 2:
        raise GanaugError("sweep pools: --pool-seeds: expected at least 2 distinct seeds (a spread over pools needs 2)")
    names = {
        k: pool_name(k, args.overrides)
        if args.report_only
        else run_named(pool_name(k, args.overrides), [*args.overrides, *pool_overrides(k)])
        for k in sorted(set(args.pool_seeds))
    }
    build_pools_report({k: read_summary(name) for k, name in names.items()})
    return OUT / "pools.md"
