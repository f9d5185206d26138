"""The report builds from fixture metrics: only the planned runs, statistics and verdicts, figures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ganaug.errors import GanaugError
from ganaug.experiment.plan import RunSpec
from ganaug.report.build import build_figures, build_tables
from ganaug.report.tables import collect_runs, summary_table
from tests.figures import assert_coloured_marks, assert_tiles_differ

CLASSES = ["a", "b"]
RECIPE = {
    "epochs": 12,
    "match": "steps",
    "synthetic_weight": 1.0,
    "synthetic_labels": "hard",
    "finetune_epochs": 0,
    "model": "resnet10t",
    "batch_size": 64,
    "lr": 0.05,
}
SEEDS = (0, 1, 2)
# test accuracy per seed: random 1x is clearly worse than real-only (5 points on every seed),
# cl-sam 1x overlaps real-only, cl-sam 2x ran one seed
ACCURACY = {
    ("baseline", "real", "0"): [0.80, 0.82, 0.81],
    ("augment", "random", "1"): [0.75, 0.77, 0.76],
    ("augment", "cl-sam", "1"): [0.81, 0.815, 0.805],
    ("augment", "cl-sam", "2"): [0.83],
    ("replace", "cl-sam", "1.0"): [0.60, 0.61, 0.62],
}


def write_run(runs, spec: RunSpec, acc, a=None, recipe=RECIPE, steps=180, data="d41d8.dir", pool="p00l.dir", val=None):
    d = runs / spec.mode / spec.key
    d.mkdir(parents=True, exist_ok=True)
    a = acc if a is None else a
    (d / "metrics.json").write_text(
        json.dumps(
            {
                "mode": spec.mode,
                "method": spec.method,
                "amount": spec.amount,
                "seed": spec.seed,
                "test_accuracy": acc,
                "val_accuracy": acc if val is None else val,
                "per_class_accuracy": {"a": a, "b": 2 * acc - a},
                "n_real": 100,
                "n_synthetic": 490
                if spec.mode == "own"
                else 150
                if spec.amount == "topup"
                else int(100 * float(spec.amount)),
                "steps": steps,
                "recipe": recipe,
                "inputs": {"data/prepared": data, **({"data/synthetic/pool": pool} if spec.mode != "baseline" else {})},
            }
        )
    )
    pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}).to_csv(
        d / "summary.csv", index=False
    )


@pytest.fixture
def runs(tmp_path):
    r = tmp_path / "runs"
    specs = []
    for (mode, sampler, amount), accs in ACCURACY.items():
        for seed, acc in zip(SEEDS, accs):
            spec = RunSpec(mode, sampler, amount, seed)
            write_run(r, spec, acc, a=0.9 if mode == "baseline" else None)
            specs.append(spec)
    return r, specs


def test_balanced_accuracy_is_the_mean_of_per_class_accuracies_not_the_accuracy(tmp_path):
    """An imbalanced test set (a large class 'a' at 95%, a small 'b' at 50%): accuracy 90%, balanced 72.5%."""
    runs = tmp_path / "runs"
    specs = [RunSpec("baseline", "real", "0", s) for s in SEEDS]
    for spec, a in zip(specs, (0.95, 0.96, 0.94)):
        write_run(runs, spec, 0.90, a=a)  # b = 2 * 0.90 - a: 0.85, 0.84, 0.86 ...
    for spec in specs:  # ... then the small class made worse, as on an imbalanced test set
        path = runs / spec.mode / spec.key / "metrics.json"
        m = json.loads(path.read_text())
        m["per_class_accuracy"]["b"] = 0.50
        path.write_text(json.dumps(m))
    row = summary_table(collect_runs(runs, specs, RECIPE)).iloc[0]
    assert row["mean"] == pytest.approx(0.90) and row["balanced"] == pytest.approx((0.95 + 0.50) / 2)
    assert row["balanced_std"] == pytest.approx(0.005)  # (0.95, 0.96, 0.94 averaged with 0.5)


def test_summary_rows_means_stds_and_intervals(runs):
    table = summary_table(collect_runs(*runs, RECIPE)).set_index("row")
    assert list(table.index[:4]) == ["real only", "cl-sam 1x", "cl-sam 2x", "random 1x"]
    assert table.loc["real only", "mean"] == pytest.approx(0.81) and table.loc["real only", "n"] == 3
    assert table.loc["real only", "std"] == pytest.approx(0.01)
    half = 4.302653 * 0.01 / np.sqrt(3)
    assert table.loc["real only", "ci_low"] == pytest.approx(0.81 - half) and table.loc[
        "real only", "ci_high"
    ] == pytest.approx(0.81 + half)
    assert table.loc["cl-sam 2x", "n"] == 1 and np.isnan(table.loc["cl-sam 2x", "std"])  # not 0.00
    assert table.loc["random 1x", "acc.a"] == pytest.approx(0.76) and table.loc["random 1x", "steps"] == 180


def test_tables_give_verdicts_with_holm(runs, tmp_path):
    table, comp = build_tables(*runs, RECIPE, tmp_path / "out", tmp_path / "summary.json", {"rl_chosen_ratio": 2.6})
    comp = comp.set_index(["row", "kind"])
    assert comp.loc[("random 1x", "vs real-only"), "verdict"] == "worse"
    assert comp.loc[("random 1x", "vs real-only"), "diff"] == pytest.approx(-0.05)
    assert comp.loc[("cl-sam 1x", "vs real-only"), "verdict"] == "no clear difference"
    assert comp.loc[("cl-sam 2x", "vs real-only"), "verdict"] == "n=1, not tested"
    assert (
        comp.loc[("cl-sam 1x", "vs random"), "n"] == 3 and comp.loc[("cl-sam 1x", "vs random"), "verdict"] == "better"
    )
    # Holm over the tested comparisons: every adjusted p >= its raw p, and 1 for the n=1 row is NaN
    tested = comp.dropna(subset=["p"])
    assert len(tested) == 4 and (tested["p_holm"] >= tested["p"]).all()
    assert tested["p_holm"].min() == pytest.approx(4 * tested["p"].min())
    md = (tmp_path / "out/summary.md").read_text()
    lines = {line.split(" | ")[0].lstrip("| "): line for line in md.splitlines() if line.startswith("| ")}
    assert "83.00 (n=1, spread not measured)" in lines["cl-sam 2x"] and "± 0.00" not in md
    assert (
        "| 81.00 ± 1.00 | [78.52, 83.48] | 81.00 ± 1.00 | **90.0** |" in lines["real only"]
    )  # bold: per-class bests only
    assert "**83.00" not in md  # the largest mean (one seed) is not crowned
    assert "| random 1x vs real-only | 180 | 3 | -5.00 |" in md and md.count("| worse |") == 2  # + replace 100%
    head = json.loads((tmp_path / "summary.json").read_text())  # the DVC metric: the headline only
    assert head["real_only"] == pytest.approx(0.81) and head["best_augmented"]["row"] == "cl-sam 2x"
    assert head["best_vs_real_only"]["verdict"] == "n=1, not tested" and head["rl_chosen_ratio"] == 2.6
    # worse: random 1x and replace 100% vs real-only; better: cl-sam 1x vs random (+4.5 to +6 points on every seed)
    assert head["verdicts"] == {"better": 1, "n=1, not tested": 1, "no clear difference": 1, "worse": 2}
    full = json.loads((tmp_path / "out/summary.json").read_text())  # every statistic, for the sweep
    # rows keyed by id, the label beside it; comparisons name both rows by id
    random = full["rows"]["augment/random/1"]
    assert random["seeds"] == {"0": 0.75, "1": 0.77, "2": 0.76} and full["recipe"] == RECIPE
    assert (random["row"], random["mode"], random["method"], random["amount"]) == (
        "random 1x",
        "augment",
        "random",
        "1",
    )
    assert {(c["reference_id"], c["verdict"]) for c in full["comparisons"] if c["id"] == "augment/random/1"} == {
        ("baseline/real/0", "worse")
    }
    assert head["best_augmented"]["id"] == "augment/cl-sam/2"
    csv = pd.read_csv(tmp_path / "out/summary.csv", dtype=str)
    assert list(csv.columns[:5]) == ["id", "row", "mode", "method", "amount"]
    assert csv.set_index("id").loc["replace/cl-sam/1.0", "row"] == "cl-sam replace 100%"
    comparisons_csv = pd.read_csv(tmp_path / "out/comparisons.csv", dtype=str)
    assert list(comparisons_csv.columns[:4]) == ["id", "reference_id", "row", "reference"]
    assert "matched by **steps**" in md


def test_a_stale_metrics_file_on_disk_is_not_read(runs, tmp_path):
    r, specs = runs
    write_run(r, RunSpec("augment", "rl", "1", 0), 0.99)  # left over from other params: not planned
    write_run(r, RunSpec("augment", "random", "1", 5), 0.99)  # a seed the params no longer list
    table = summary_table(collect_runs(r, specs, RECIPE)).set_index("row")
    assert "rl 1x" not in table.index and table.loc["random 1x", "n"] == 3
    assert table.loc["random 1x", "mean"] == pytest.approx(0.76)


def test_runs_of_another_recipe_or_data_are_refused(runs):
    r, specs = runs
    write_run(r, specs[0], 0.80, recipe={**RECIPE, "finetune_epochs": 5})
    with pytest.raises(GanaugError, match="finetune_epochs = 5 but params.yaml says 0"):
        collect_runs(r, specs, RECIPE)
    write_run(r, specs[0], 0.80, data="other.dir")
    with pytest.raises(GanaugError, match="other real data"):
        collect_runs(r, specs, RECIPE)
    write_run(r, specs[0], 0.80, a=0.9)
    write_run(r, specs[-1], 0.62, pool="another-gan.dir")  # a run from another GAN's pool
    with pytest.raises(GanaugError, match="a different data/synthetic/pool"):
        collect_runs(r, specs, RECIPE)


def test_a_missing_planned_run_names_its_stage(runs):
    r, specs = runs
    with pytest.raises(GanaugError, match=r"random-1-s4/metrics.json: missing.*dvc repro augment@random-1-4"):
        collect_runs(r, [*specs, RunSpec("augment", "random", "1", 4)], RECIPE)
    with pytest.raises(GanaugError, match="no experiment runs"):
        collect_runs(r, [], RECIPE)


def test_comparisons_across_budgets_are_refused(tmp_path):
    r = tmp_path / "runs"
    specs = [RunSpec("baseline", "real", "0", s) for s in SEEDS] + [RunSpec("augment", "cl-sam", "1", s) for s in SEEDS]
    for spec in specs:  # match: real_epochs without a real-only row at the 1x run's steps
        write_run(r, spec, 0.8 + 0.01 * spec.seed, steps=180 if spec.mode == "baseline" else 360)
    table, comp = build_tables(r, specs, RECIPE, tmp_path / "out", tmp_path / "summary.json")
    assert comp["verdict"].tolist() == ["not compared: no real-only row at the same steps"]
    spec_matched = [RunSpec("baseline", "real", "1", s) for s in SEEDS]
    for spec in spec_matched:
        write_run(r, spec, 0.79 + 0.01 * spec.seed, steps=360)
    table, comp = build_tables(r, specs + spec_matched, RECIPE, tmp_path / "out", tmp_path / "summary.json")
    assert comp["reference"].tolist() == ["real only (steps of 1x)"] and comp["diff"].iloc[0] == pytest.approx(0.01)


def test_figures_are_written(runs, tmp_path):
    table, _ = build_tables(*runs, RECIPE, tmp_path / "out", tmp_path / "summary.json")
    rng = np.random.default_rng(0)
    scores = pd.DataFrame(
        {"id": np.arange(40), "label": np.arange(40) % 2, "confidence": rng.random(40), "realism": rng.normal(size=40)}
    )
    images = rng.integers(0, 255, (40, 8, 8, 1), dtype=np.uint8)
    made = build_figures(table, tmp_path / "fig", CLASSES, images, scores)
    names = sorted(p.name for p in made)
    assert names == sorted(
        [
            "accuracy_vs_ratio.png",
            "replacement.png",
            "hist_confidence.png",
            "hist_realism.png",
            "extremes_confidence.png",
            "extremes_realism.png",
        ]
    )
    for path in made:
        if path.name.startswith("extremes_"):
            assert_tiles_differ(path)  # the pool's most and least confident images per class
        else:
            assert_coloured_marks(path)  # curves, bars


def test_gradcam_maps_vary_over_the_image_and_use_a_wide_enough_layer():
    import timm
    import torch

    from ganaug.report.gradcam import cam_maps, target_layer

    torch.manual_seed(0)
    model = timm.create_model("resnet10t", num_classes=3, in_chans=1).eval()
    assert target_layer(model, torch.zeros(1, 1, 32, 32)) is model.layer2[-1]  # layer4 is 1x1 at 32 px
    assert target_layer(model, torch.zeros(1, 1, 128, 128)) is model.layer4[-1]
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 1), dtype=np.uint8)
    maps, pred = cam_maps(model, {"mean": [0.5], "std": [0.25]}, images, np.array([0, 1]))
    assert maps.shape == (2, 32, 32) and pred.shape == (2,)
    assert ((maps >= 0) & (maps <= 1)).all() and all(m.std() > 0.01 for m in maps)  # not one flat value


def test_rotated_copies_are_also_compared_with_no_augmentation_and_own_rows_named(tmp_path):
    r = tmp_path / "runs"
    accs = {
        ("baseline", "real", "0"): [0.80, 0.81, 0.82],
        ("baseline", "plain", "0"): [0.82, 0.83, 0.84],
        ("baseline", "rotated-copies", "0"): [0.81, 0.82, 0.83],
        ("own", "rl", "own"): [0.70, 0.71, 0.72],
    }
    specs = []
    for (mode, sampler, amount), values in accs.items():
        for seed, acc in zip(SEEDS, values):
            specs.append(RunSpec(mode, sampler, amount, seed))
            write_run(r, specs[-1], acc, a=acc)
    table, comp = build_tables(r, specs, RECIPE, tmp_path / "out", tmp_path / "summary.json")
    assert table["row"].tolist() == [
        "real only, no augmentation",
        "real only",
        "real only + rotated copies, no augmentation",
        "rl own choice",
    ]
    pairs = {(c["row"], c["kind"]): c["diff"] for _, c in comp.iterrows()}
    assert pairs[("real only + rotated copies, no augmentation", "vs no augmentation")] == pytest.approx(-0.01)
    assert pairs[("real only + rotated copies, no augmentation", "vs real-only")] == pytest.approx(0.01)
    assert pairs[("rl own choice", "vs real-only")] == pytest.approx(-0.10)
    # plain has the best validation accuracy of the real-only rows (val = test here): the synthetic row faces it too
    assert pairs[("rl own choice", "vs best real-only")] == pytest.approx(-0.12) and len(pairs) == 5


def test_tail_third_is_the_classes_with_the_fewest_real_images():
    from ganaug.report.tables import tail_classes

    assert tail_classes({"a": 5, "b": 5, "c": 5}) == []  # balanced: no tail
    assert tail_classes({"a": 100, "b": 5, "c": 50, "d": 5, "e": 20, "f": 9, "g": 70}) == ["b", "d", "f"]  # ceil(7 / 3)
    assert tail_classes({"a": 5, "b": 5, "c": 5, "d": 5, "e": 20, "f": 20}) == [
        "a",
        "b",
        "c",
        "d",
    ]  # ties at the cut stay in


def test_long_tail_rows_get_a_tail_column_and_face_the_best_real_only_baseline_chosen_on_validation(tmp_path):
    from ganaug.report.tables import collect_runs, comparisons, summary_table, to_markdown

    runs, specs = tmp_path / "runs", []
    # resample has the higher validation accuracy but the lower test accuracy than real: it is the one chosen
    rows = {
        ("baseline", "real", "0"): ([0.70, 0.71, 0.72], 0.60),
        ("baseline", "resample", "0"): ([0.69, 0.70, 0.69], 0.65),
        ("augment", "cl-sam", "topup"): ([0.74, 0.75, 0.75], 0.62),
    }
    for (mode, sampler, amount), (accs, val) in rows.items():
        for seed, acc in enumerate(accs):
            spec = RunSpec(mode, sampler, amount, seed)
            write_run(runs, spec, acc, a=acc - 0.1, val=val)  # class a (the tail here) 10 points below the mean
            specs.append(spec)
    frame = collect_runs(runs, specs, tail=["a"])
    table = summary_table(frame)
    assert np.allclose(table["tail"], table["mean"] - 0.1)
    comp = comparisons(frame, table)
    best = comp[comp["kind"] == "vs best real-only"]
    assert best["row"].tolist() == ["cl-sam top-up"] and best["reference"].tolist() == [
        "real only, class-balanced resampling"
    ]
    assert np.isclose(best["diff"].iloc[0], np.mean([0.74, 0.75, 0.75]) - np.mean([0.69, 0.70, 0.69]))
    md = to_markdown(table, comp)
    assert (
        "tail-third accuracy" in md and "cl-sam top-up vs best real-only (real only, class-balanced resampling)" in md
    )
    from ganaug.report.figures import accuracy_vs_ratio

    accuracy_vs_ratio(table, tmp_path / "ratio.png")  # the top-up row at its actual ratio, both baselines drawn
    assert_coloured_marks(tmp_path / "ratio.png")
    plain = to_markdown(summary_table(collect_runs(runs, specs)), comp)
    assert "tail-third" not in plain  # a balanced set has no tail column


def test_with_pseudo_labelling_every_synthetic_row_also_faces_it_at_the_same_amount(tmp_path):
    from ganaug.report.tables import collect_runs, comparisons, summary_table

    runs, specs = tmp_path / "runs", []
    rows = {
        ("baseline", "real", "0"): [0.70, 0.71, 0.72],
        ("augment", "pseudo-label", "1"): [0.76, 0.77, 0.78],
        ("augment", "dapper", "1"): [0.73, 0.75, 0.74],
        ("augment", "random", "1"): [0.68, 0.69, 0.70],
    }
    for (mode, sampler, amount), accs in rows.items():
        for seed, acc in enumerate(accs):
            specs.append(RunSpec(mode, sampler, amount, seed))
            write_run(runs, specs[-1], acc)
    frame = collect_runs(runs, specs)
    comp = comparisons(frame, summary_table(frame))
    vs_pseudo = comp[comp["kind"] == "vs pseudo-label"].set_index("row")
    assert sorted(vs_pseudo.index) == ["dapper 1x", "random 1x"]  # not pseudo-labelling itself, not real-only
    assert vs_pseudo.loc["dapper 1x", "diff"] == pytest.approx(-0.03)
    assert (vs_pseudo["reference"] == "pseudo-label 1x").all()
    pairs = [frozenset((r, ref)) for r, ref in zip(comp["row"], comp["reference"])]
    assert len(pairs) == len(set(pairs))  # no pair of rows compared twice (each would count in Holm's family)
    without = collect_runs(runs, [s for s in specs if s.method != "pseudo-label"])
    assert "vs pseudo-label" not in set(comparisons(without, summary_table(without))["kind"])


def test_every_synthetic_row_faces_retrieval_at_its_amount_and_no_pair_counts_twice(tmp_path):
    from ganaug.report.tables import collect_runs, comparisons, summary_table

    runs, specs = tmp_path / "runs", []
    rows = {
        ("baseline", "real", "0"): [0.70, 0.71, 0.72],
        ("augment", "retrieval", "1"): [0.78, 0.79, 0.80],
        ("augment", "pseudo-label", "1"): [0.76, 0.77, 0.78],
        ("augment", "clip", "1"): [0.73, 0.75, 0.74],
        ("augment", "random", "1"): [0.68, 0.69, 0.70],
        ("augment", "random", "2"): [0.69, 0.69, 0.70],  # no retrieval row at 2x: nothing to face
    }
    for (mode, sampler, amount), accs in rows.items():
        for seed, acc in enumerate(accs):
            specs.append(RunSpec(mode, sampler, amount, seed))
            write_run(runs, specs[-1], acc)
    frame = collect_runs(runs, specs)
    comp = comparisons(frame, summary_table(frame))
    vs = comp[comp["kind"] == "vs retrieval"].set_index("row")
    # not retrieval itself, not real-only, and not pseudo-labelling: that pair is retrieval's row vs pseudo-label
    assert sorted(vs.index) == ["clip 1x", "random 1x"] and (vs["reference"] == "retrieval 1x").all()
    assert vs.loc["clip 1x", "diff"] == pytest.approx(-0.05)
    retrieval_vs_pseudo = comp[(comp["row"] == "retrieval 1x") & (comp["kind"] == "vs pseudo-label")]
    assert retrieval_vs_pseudo["diff"].item() == pytest.approx(0.02)
    assert "retrieval 1x" not in set(comp[comp["kind"] == "vs random"]["row"])  # random faces it as vs retrieval
    pairs = [frozenset((r, ref)) for r, ref in zip(comp["row"], comp["reference"])]
    assert len(pairs) == len(set(pairs))  # no pair of rows compared twice (each would count in Holm's family)
    without = collect_runs(runs, [s for s in specs if s.method != "retrieval"])
    assert "vs retrieval" not in set(comparisons(without, summary_table(without))["kind"])


def test_the_figure_checks_refuse_empty_axes_and_a_flat_grid(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    fig, ax = plt.subplots()
    ax.set_xlabel("ratio"), ax.set_ylabel("accuracy")  # axes and text, nothing plotted
    fig.savefig(tmp_path / "empty.png")
    ax.plot([0, 1, 2], [0.7, 0.8, 0.75])
    fig.savefig(tmp_path / "line.png")
    plt.close(fig)
    Image.new("L", (200, 200), 128).save(tmp_path / "flat.png")
    with pytest.raises(AssertionError):
        assert_coloured_marks(tmp_path / "empty.png")
    assert_coloured_marks(tmp_path / "line.png")
    with pytest.raises(AssertionError):
        assert_tiles_differ(tmp_path / "flat.png")


def test_every_mode_and_variant_has_its_report_entry_and_each_row_its_own_label():
    from ganaug.experiment.plan import MODES, planned_runs
    from ganaug.experiment.training import SYNTHETIC
    from ganaug.experiment.variants import VARIANTS
    from ganaug.report.rows import MODE_ROWS, VARIANT_ROWS, label
    from tests.conftest import TINY, params_with

    assert set(MODE_ROWS) == set(MODES) and list(VARIANT_ROWS) == list(VARIANTS)
    assert set(SYNTHETIC) == {name for name, mode in MODES.items() if mode.method_kind == "sampler"}
    every = {
        "baselines": list(VARIANTS),
        "baseline_at": [0, 1],
        "samplers": ["random", "cl-sam"],
        "ratios": [1, 2],
        "replace": [0.5],
        "counts": [100],
        "own": ["rl"],
    }
    params = params_with({**TINY, "experiments": {**TINY.get("experiments", {}), **every}})
    ids = {spec.row_id for spec in planned_runs(params)}
    labels = {label(*row.split("/")) for row in ids}
    assert len(labels) == len(ids) == 6 * 2 + 2 * 2 + 1 + 1 + 1  # one label per id, none shared
