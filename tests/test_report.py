"""The report builds from fixture metrics: table values, best marks, data saved, figures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ganaug.errors import GanaugError
from ganaug.report.build import build_figures, build_tables
from ganaug.report.tables import collect_runs, summary_table

CLASSES = ["a", "b"]


def write_run(runs, mode, sampler, amount, seed, acc, per_class=None, a=None):
    key = f"{sampler}-{amount}-s{seed}" if mode != "lowdata" else f"{per_class}-{sampler}-{amount}-s{seed}"
    d = runs / mode / key
    d.mkdir(parents=True)
    pcs = {"a": a if a is not None else acc, "b": 2 * acc - (a if a is not None else acc)}
    (d / "metrics.json").write_text(json.dumps({
        "mode": mode, "sampler": sampler, "amount": amount, "seed": seed, "per_class": per_class, "test_accuracy": acc,
        "per_class_accuracy": pcs, "n_real": 100, "n_synthetic": int(100 * float(amount)), "match": "steps"}))
    pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}).to_csv(d / "summary.csv", index=False)


@pytest.fixture
def runs(tmp_path):
    r = tmp_path / "runs"
    write_run(r, "baseline", "real", "0", 0, 0.80, a=0.9)
    write_run(r, "baseline", "real", "0", 1, 0.82, a=0.9)
    write_run(r, "augment", "random", "1", 0, 0.78)
    write_run(r, "augment", "random", "1", 1, 0.76)
    write_run(r, "augment", "cl-sam", "1", 0, 0.84, a=0.7)
    write_run(r, "augment", "cl-sam", "1", 1, 0.86, a=0.7)
    write_run(r, "augment", "cl-sam", "2", 0, 0.83)
    write_run(r, "replace", "cl-sam", "1.0", 0, 0.60)
    for pc, real_acc, syn_acc in ((10, 0.6, 0.7), (25, 0.7, 0.815), (50, 0.78, 0.85)):
        write_run(r, "lowdata", "real", "1.0", 0, real_acc, per_class=pc)
        write_run(r, "lowdata", "synthetic", "1.0", 0, syn_acc, per_class=pc)
    return r


def test_summary_rows_means_and_stds(runs):
    table = summary_table(collect_runs(runs)).set_index("row")
    assert list(table.index[:4]) == ["0x real", "cl-sam 1x", "cl-sam 2x", "random 1x"]
    assert table.loc["0x real", "mean"] == pytest.approx(0.81)
    assert table.loc["0x real", "std"] == pytest.approx(np.std([0.80, 0.82], ddof=1))
    assert table.loc["cl-sam 1x", "seeds"] == 2 and table.loc["cl-sam 2x", "std"] == 0.0
    assert table.loc["random 1x", "acc.a"] == pytest.approx(0.77)
    assert table.loc["cl-sam replace 100%", "n_synthetic"] == 100


def test_tables_mark_the_best_and_report_the_data_saved(runs, tmp_path):
    table = build_tables(runs, tmp_path / "out", tmp_path / "summary.json", {"rl_chosen_ratio": 2.6})
    md = (tmp_path / "out/summary.md").read_text()
    lines = {line.split(" | ")[0].lstrip("| "): line for line in md.splitlines() if line.startswith("| ")}
    assert "**85.00 ± 1.41**" in lines["cl-sam 1x"]  # best mean
    assert "**90.0**" in lines["0x real"] and "**90.0**" not in lines["cl-sam 1x"]  # best on class a: real-only
    assert "**" not in lines["cl-sam replace 100%"]  # replacement rows are not in the comparison
    csv = pd.read_csv(tmp_path / "out/summary.csv")
    assert len(csv) == len(table) and {"row", "mean", "std", "acc.a", "acc.b"} <= set(csv.columns)
    head = json.loads((tmp_path / "summary.json").read_text())
    assert head["real_only"] == pytest.approx(0.81) and head["best_augmented"]["row"] == "cl-sam 1x"
    assert head["best_minus_real_only"] == pytest.approx(0.04)
    # 25/class augmented (0.815) reaches real-only at the full set (0.81); real alone never does
    assert head["low_data"] == {"reference_accuracy": 0.81, "smallest_per_class_augmented": 25, "smallest_per_class_real_only": None}
    assert head["rl_chosen_ratio"] == 2.6
    assert "matched by **steps**" in md


def test_figures_are_written(runs, tmp_path):
    table = build_tables(runs, tmp_path / "out", tmp_path / "summary.json")
    rng = np.random.default_rng(0)
    scores = pd.DataFrame({"id": np.arange(40), "label": np.arange(40) % 2, "confidence": rng.random(40), "realism": rng.normal(size=40)})
    images = rng.integers(0, 255, (40, 8, 8, 1), dtype=np.uint8)
    made = build_figures(table, tmp_path / "fig", CLASSES, images, scores)
    names = sorted(p.name for p in made)
    assert names == sorted(["accuracy_vs_ratio.png", "replacement.png", "low_data.png", "hist_confidence.png",
                            "hist_realism.png", "extremes_confidence.png", "extremes_realism.png"])
    assert all(p.stat().st_size > 1000 for p in made)


def test_no_runs_is_a_clear_error(tmp_path):
    with pytest.raises(GanaugError, match="no runs"):
        collect_runs(tmp_path)


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
