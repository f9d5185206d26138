"""The sweeps' plans and reports (low data, pool replicates, GAN A/B), on fixture summaries (the real
low-data sweep runs in test_pipeline)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ganaug.errors import GanaugError
from ganaug.sweeps.common import experiment_name, with_overrides
from ganaug.sweeps.gan import build_gan_report, gan_experiment_name, parse_variant
from ganaug.sweeps.lowdata import SWEEP_KEYS, build_report, size_overrides
from ganaug.sweeps.pools import build_pools_report
from tests.conftest import params_with, write_params
from tests.figures import assert_coloured_marks


def test_each_size_trains_at_least_the_full_size_steps_within_one_epoch():
    params = params_with(
        {
            "data": {"per_class": 100, "val_per_class": 50},
            "train": {"epochs": 40, "batch_size": 64},
            "experiments": {"epochs": 12},
        }
    )
    counts = [100] * 10  # full size: 1000 images, 15 steps per epoch at batch 64 -> 180 experiment steps
    # 10/class: 100 images = 1 step per epoch -> 180 epochs = 180 steps (not 120 epochs = 120 steps)
    assert size_overrides(params, 10, counts) == [
        "data.per_class=10",
        "data.val_per_class=5",
        "train.epochs=600",
        "experiments.epochs=180",
    ]
    # 50/class: 7 steps per epoch -> 26 epochs = 182 steps >= 180, within one epoch
    sets = dict(s.split("=") for s in size_overrides(params, 50, counts))
    assert int(sets["experiments.epochs"]) * (500 // 64) == 182 and int(sets["train.epochs"]) * 7 >= 40 * 15
    assert sets["data.val_per_class"] == "25"
    assert size_overrides(params, 100, counts) == []  # the reference size runs the params as they are
    for bad in (200, 0):
        with pytest.raises(GanaugError, match=f"--per-class {bad}: expected sizes from 1 up to data.per_class"):
            size_overrides(params, bad, counts)
    fraction = params_with({"data": {"per_class": 100, "val_per_class": 0.1}})  # a fraction cannot shrink with the size
    with pytest.raises(GanaugError, match="data.val_per_class is a fraction .0.1.; set a count"):
        size_overrides(fraction, 10, counts)
    null_epochs = params_with({"data": {"per_class": 100}, "experiments": {"epochs": None}})
    assert not any(s.startswith("experiments.epochs") for s in size_overrides(null_epochs, 10, counts))


def test_overrides_apply_before_scaling_and_sweep_keys_are_refused(tmp_path):
    write_params(tmp_path, {"data": {"per_class": 100}, "experiments": {"epochs": 12}})
    params = with_overrides(["experiments.epochs=20", "experiments.samplers=[cl-sam]"], str(tmp_path / "params.yaml"))
    assert params.experiments.epochs == 20 and params.experiments.samplers == ["cl-sam"]
    with pytest.raises(GanaugError, match="-S data.per_class: the sweep sets it per size"):
        with_overrides(["data.per_class=10"], str(tmp_path / "params.yaml"), refused=SWEEP_KEYS)
    with pytest.raises(GanaugError, match="expected key=value"):
        with_overrides(["experiments.epochs"], str(tmp_path / "params.yaml"))


def test_experiment_names_differ_by_overrides():
    assert experiment_name(10, [], "lowdata") == "lowdata-10"
    a, b = (
        experiment_name(10, ["experiments.samplers=[cl-sam]"], "lowdata"),
        experiment_name(10, ["experiments.samplers=[random]"], "lowdata"),
    )
    assert a.startswith("lowdata-10-") and a != b


REAL_ONLY, CL_SAM = "baseline/real/0", "augment/cl-sam/1"  # row ids


def rows(accuracies: dict[str, list[float]], steps=180) -> dict:
    """reports/summary.json's rows: keyed by id, each with its parts and its label (which a sweep never joins on)."""
    out = {}
    for row, accs in accuracies.items():
        mode, method, amount = row.split("/")
        out[row] = {
            "row": f"a label of {row}",
            "mode": mode,
            "method": method,
            "amount": amount,
            "seeds": {str(s): a for s, a in enumerate(accs)},
            "steps": steps,
        }
    return out


def summary(real, synth, steps=180):
    return {
        "rows": rows({REAL_ONLY: real, CL_SAM: synth}, steps),
        "comparisons": [
            {
                "id": CL_SAM,
                "reference_id": REAL_ONLY,
                "row": "cl-sam 1x",
                "reference": "real only",
                "diff": sum(synth) / 3 - sum(real) / 3,
                "verdict": "better",
            }
        ],
    }


def test_report_finds_the_data_saved_against_the_full_real_set(tmp_path):
    summaries = {
        10: summary([0.60, 0.62, 0.61], [0.66, 0.67, 0.68]),
        50: summary([0.76, 0.78, 0.77], [0.80, 0.81, 0.82]),
        100: summary([0.79, 0.80, 0.81], [0.78, 0.80, 0.79]),
    }
    table = build_report(summaries, tmp_path)
    saved = json.loads((tmp_path / "data_saved.json").read_text())
    # real-only at 100/class: 80.0; cl-sam reaches it at 50/class, real alone at no smaller size
    assert saved == {
        "reference_per_class": 100,
        "reference_accuracy": 0.8,
        "smallest_per_class": {"real only": None, "cl-sam 1x": 50},
    }
    row = table[(table["per_class"] == 50) & (table["row"] == "cl-sam 1x")].iloc[0]
    assert (
        row["diff_vs_full_real"] == pytest.approx(0.01)
        and row["diff_vs_full_real_ci_low"] < 0.01 < row["diff_vs_full_real_ci_high"]
    )
    assert row["n"] == 3 and row["verdict real-only"] == "better" and row["id"] == CL_SAM
    assert row["vs real-only"] == pytest.approx(0.04)  # paired over seeds: +4, +3, +5 points
    # joined across sizes by id; the label is made from the id (the stored labels above are placeholders)
    assert table.groupby("id")["per_class"].apply(list).to_dict() == {CL_SAM: [10, 50, 100], REAL_ONLY: [10, 50, 100]}
    md = (tmp_path / "lowdata.md").read_text()
    assert "| 50 | cl-sam 1x | 180 | 3 | 81.00 ± 1.00 |" in md and "cl-sam 1x 50" in md
    assert (
        "| 50 | real only | 180 | 3 | 77.00 ± 1.00 | [74.52, 79.48] | — |" in md
    )  # real-only is not compared with itself
    assert_coloured_marks(tmp_path / "low_data.png")


def pool_summary(real, synth):
    """One pool's reports/summary.json: real-only, rotation and cl-sam 1x per seed, with comparisons."""
    rotate = "baseline/rotate/0"
    return {
        "rows": rows({REAL_ONLY: real, rotate: [a - 0.01 for a in real], CL_SAM: synth}),
        "comparisons": [
            {
                "id": rotate,
                "reference_id": REAL_ONLY,
                "row": "real only + rotation",
                "reference": "real only",
                "kind": "vs real-only",
                "verdict": "worse",
            },
            {
                "id": CL_SAM,
                "reference_id": REAL_ONLY,
                "row": "cl-sam 1x",
                "reference": "real only",
                "kind": "vs real-only",
                "verdict": "worse",
            },
        ],
    }


def test_pool_replicates_are_the_unit_of_replication(tmp_path):
    real = [0.80, 0.82, 0.81]  # real-only does not depend on the pool: the same runs in every replicate
    summaries = {
        0: pool_summary(real, [0.78, 0.80, 0.79]),  # -2 points on every seed
        1: pool_summary(real, [0.77, 0.79, 0.78]),  # -3
        2: pool_summary(real, [0.785, 0.805, 0.795]),
    }  # -1.5
    table = build_pools_report(summaries, tmp_path)
    assert table["row"].tolist() == ["cl-sam 1x"]  # rotation vs real-only does not depend on the pool: not replicated
    c = table.iloc[0]
    assert (c["pools"], c["seeds_per_pool"]) == (3, 3)
    assert c["diff"] == pytest.approx(-0.021667, abs=1e-6)  # the mean of -2, -3, -1.5 points
    # n = 3 pools, not 9 (pool, seed) pairs: t over [-0.02, -0.03, -0.015], df 2
    sd = np.std([-0.02, -0.03, -0.015], ddof=1)
    assert c["ci_high"] - c["diff"] == pytest.approx(4.302653 * sd / np.sqrt(3), rel=1e-5)
    assert c["p"] == pytest.approx(0.0390, abs=2e-4) and c["verdict"] == "worse"  # t = 4.91, df 2
    md = (tmp_path / "pools.md").read_text()
    assert "| cl-sam 1x vs real only | 3 | 3 | -2.17 |" in md and "-2.00, -3.00, -1.50" in md


def test_pools_with_one_replicate_give_no_verdict(tmp_path):
    table = build_pools_report({0: pool_summary([0.8, 0.81], [0.7, 0.72])}, tmp_path)
    assert table.iloc[0]["verdict"] == "n=1, not tested"


def test_a_difference_of_zero_in_every_pool_is_no_clear_difference(tmp_path):
    same = [0.8, 0.81, 0.82]
    table = build_pools_report({0: pool_summary(same, same), 1: pool_summary(same, same)}, tmp_path)
    assert table.iloc[0]["p"] == 1.0 and table.iloc[0]["verdict"] == "no clear difference"


def gan_result(fid, agreement, minutes=6.5):
    return {
        "fid": fid,
        "kid": fid / 1000,
        "diversity_ratio": 0.8,
        "label_agreement": agreement,
        "best_step": 800,
        "minutes": minutes,
    }


def test_gan_ab_compares_variants_with_default_at_the_same_seeds(tmp_path):
    results = {
        ("wide", 0): gan_result(28.0, 0.82),
        ("wide", 1): gan_result(32.0, 0.80),
        ("default", 0): gan_result(42.0, 0.70),
        ("default", 1): gan_result(44.0, 0.72, minutes=None),
    }
    table = build_gan_report(results, tmp_path)
    assert list(table["variant"]) == ["default", "default", "wide", "wide"]  # the reference first
    md = (tmp_path / "gan.md").read_text()
    wide = next(line for line in md.splitlines() if line.startswith("| wide |"))
    # paired: (28 - 42 + 32 - 44) / 2 = -13; both differences -14 and -12, so the t interval is 13 +- 12.71
    assert "30.0 (28.0, 32.0) | -13.0 [-25.7, -0.3]" in wide and "+0.100 [-0.154, +0.354]" in wide  # 0.12 and 0.08
    assert wide.endswith("| both |")  # mean FID 30 <= 30, mean agreement 0.81 >= 0.80
    default = next(line for line in md.splitlines() if line.startswith("| default |"))
    assert default.endswith("| neither |") and "| — |" in default and "| 6.5 |" in default


def test_gan_variants_change_only_the_gan_and_never_its_seed():
    assert parse_variant("ndis1: gan.n_dis=1 gan.steps=1600") == ("ndis1", ["gan.n_dis=1", "gan.steps=1600"])
    for bad in (
        "ndis1 gan.n_dis=1",
        "x: train.lr=0.1",
        "x: gan.seed=3",
        "default: gan.n_dis=1",
        "x:",
        "a b: gan.n_dis=1",
    ):
        with pytest.raises(GanaugError, match="sweep gan: --variant"):
            parse_variant(bad)
    assert gan_experiment_name("ndis1", 1, []) == "gan-ndis1-s1"


@pytest.mark.parametrize("preset", ["LONGTAIL", "PAPER", "GPU", "UNLABELLED", "FEWSHOT"])
def test_the_makefile_presets_are_valid_params(preset):
    """make run-longtail, make run-paper and make run-gpu pass these -S overrides to DVC: a renamed key or a bad
    value would only fail minutes into an experiment, so they are checked here against the schema."""
    import re
    import shlex
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    text = (root / "Makefile").read_text().replace("\\\n", " ")
    value = re.search(rf"^{preset} := (.*)$", text, re.M).group(1)
    args = shlex.split(value)
    sets = [args[i + 1] for i, a in enumerate(args) if a == "-S"]
    assert len(sets) == args.count("-S") >= 3  # continuation lines joined above
    params = with_overrides(sets, str(root / "params.yaml"), refused=())
    if preset == "LONGTAIL":
        assert params.experiments.recipe == "head-refit" and params.experiments.ratios == ["topup"]
    if preset == "GPU":
        assert params.gan.steps == 8000 and not params.train.deterministic
    if preset == "FEWSHOT":  # DA-Fusion's sizes, against the real-image rows the sweep pairs every row with
        assert "lowdata --per-class 1 2 4 8 16 $(FEWSHOT)" in text and params.data.unlabelled == "rest"
        assert {"pseudo-label", "retrieval"} <= set(params.experiments.samplers) and len(params.experiments.seeds) == 5


def unlabelled_summary(real, pseudo, samples, dapper):
    return {
        "rows": rows(
            {REAL_ONLY: real, "augment/pseudo-label/1": pseudo, "augment/random/1": samples, "augment/dapper/1": dapper}
        )
    }


def test_unlabelled_sweep_pairs_every_row_with_real_only_and_pseudo_labelling_under_one_holm_family():
    from ganaug.sweeps.unlabelled import table_rows, to_markdown

    real, pseudo = [0.80, 0.81, 0.82], [0.84, 0.85, 0.86]
    summaries = {
        (100, "style", "random"): unlabelled_summary(real, pseudo, [0.70, 0.72, 0.71], [0.801, 0.812, 0.818]),
        (100, "style", "predictor"): unlabelled_summary(real, pseudo, [0.70, 0.72, 0.71], [0.86, 0.87, 0.88]),
        (100, "ddpm", "random"): unlabelled_summary(real, pseudo, [0.75, 0.76, 0.74], [0.83, 0.83, 0.85]),
    }
    table = table_rows(summaries).set_index("row")
    assert list(table.index) == [
        "real-only",
        "pseudo-label",
        "style GAN samples (random)",
        "DAPPER-W (random)",
        "DAPPER-W (predictor)",
        "DDPM samples (random)",
        "Diffusion Inversion (random)",
    ]
    assert table.loc["Diffusion Inversion (random)", "vs real-only"] == pytest.approx(0.0267, abs=1e-4)
    assert table.loc["DAPPER-W (predictor)", "vs real-only"] == pytest.approx(0.06)
    assert table.loc["DAPPER-W (predictor)", "vs pseudo-label"] == pytest.approx(0.02)
    assert table.loc["style GAN samples (random)", "verdict real-only"] == "worse"
    assert table.loc["DAPPER-W (random)", "verdict real-only"] == "no clear difference"
    assert pd.isna(table.loc["real-only", "vs real-only"]) and pd.isna(table.loc["pseudo-label", "vs pseudo-label"])
    # Holm over all 11 comparisons of the table: each adjusted p at least its raw p
    assert (table["p_holm real-only"].dropna() >= table["p real-only"].dropna()).all()
    quality = {
        (100, g, m): {
            "pool_images": 1734 if g == "ddpm" else 2000,
            "pool_wanted": 2000,
        }
        | {
            k: 1.0
            for k in (
                "gan_fid",
                "real_test_fid",
                "pool_fid",
                "pool_agreement",
                "projection_fid",
                "projection_agreement",
                "pseudo_fid",
            )
        }
        for g, m in (("style", "random"), ("style", "predictor"), ("ddpm", "random"))
    }
    md = to_markdown(table.reset_index(), quality, ["dvc exp run -S x=1"])
    assert "| 100 | DAPPER-W (predictor) | 180 | 3 | 87.00 ± 1.00 |" in md and "dvc exp run -S x=1" in md
    assert "| 100 | ddpm | random | 1.0 | 1.0 | 1,734 / 2,000 | 1.0 / 1.00 |" in md  # a short pool says so


def test_an_unlabelled_report_of_a_partial_sweep_names_and_leaves_out_the_points_not_run(tmp_path, monkeypatch, capsys):
    """--report-only before every experiment has run: the table has the finished points' rows only, and each
    missing experiment is named (never a crash on a missing revision, never a row invented)."""
    import argparse

    import ganaug.data.store
    from ganaug.sweeps import unlabelled

    extra = ["experiments.seeds=[0,1,2]"]
    done = {unlabelled.experiment_name(100, unlabelled.point_overrides("style", "random", extra), "unlabelled")}
    real, pseudo = [0.80, 0.81, 0.82], [0.78, 0.79, 0.80]
    monkeypatch.setattr(unlabelled, "finished_experiments", lambda: done)
    monkeypatch.setattr(unlabelled, "read_summary", lambda name: unlabelled_summary(real, pseudo, real, real))
    monkeypatch.setattr(unlabelled, "generator_quality", lambda name: {})
    monkeypatch.setattr(unlabelled, "to_markdown", lambda table, quality, commands: f"{len(commands)} commands\n")
    monkeypatch.setattr(unlabelled, "save_grids", lambda names, out: None)
    monkeypatch.setattr(unlabelled, "OUT", tmp_path)
    monkeypatch.setattr(
        ganaug.data.store, "load_classes", lambda path: {"classes": ["a"], "counts": {"train": {"a": 100}}}
    )
    args = argparse.Namespace(per_class=[100], generators=["style", "ddpm"], overrides=extra, report_only=True)
    unlabelled.run(args)
    out = capsys.readouterr().out
    assert "(style predictor, 100/class) has not run" in out and "(ddpm random, 100/class) has not run" in out
    table = pd.read_csv(tmp_path / "unlabelled.csv")
    assert list(table["row"]) == ["real-only", "pseudo-label", "style GAN samples (random)", "DAPPER-W (random)"]
    assert (tmp_path / "unlabelled.md").read_text() == "3 commands\n"  # every point's command, run or not


def test_an_unlabelled_report_leaves_the_pool_size_blank_when_the_pool_is_not_in_the_cache(monkeypatch, capsys):
    """Experiments pulled without their data still report: their metrics are in git, the pool is in DVC's cache."""
    from dvc.exceptions import PathMissingError

    from ganaug.sweeps import unlabelled

    def read_json(experiment, path):
        if path.startswith("data/"):
            raise PathMissingError(path, experiment)
        return {"fid": 40.0} if path.endswith("gan.json") else {"pool": {"fid": 41.0, "label_agreement": 1.0}}

    monkeypatch.setattr(unlabelled, "read_json", read_json)
    quality = unlabelled.generator_quality("unlabelled-10-abcdef")
    assert quality["pool_images"] is None and quality["pool_wanted"] is None and quality["gan_fid"] == 40.0
    assert "unlabelled-10-abcdef: pool size left blank" in capsys.readouterr().out


def test_an_unlabelled_experiment_run_without_the_samples_row_reports_its_other_rows():
    """A generator whose pool the random sampler refuses (too short a class) is run with the dapper row alone."""
    from ganaug.sweeps.unlabelled import table_rows

    real, pseudo = [0.80, 0.81, 0.82], [0.78, 0.79, 0.80]
    summary = unlabelled_summary(real, pseudo, [0.7, 0.7, 0.7], [0.83, 0.84, 0.86])
    del summary["rows"]["augment/random/1"]
    table = table_rows({(100, "ddpm", "random"): summary}).set_index("row")
    assert list(table.index) == ["real-only", "pseudo-label", "Diffusion Inversion (random)"]
    assert table.loc["Diffusion Inversion (random)", "vs real-only"] == pytest.approx(0.0333, abs=1e-4)
