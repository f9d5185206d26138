"""The low-data sweep's plan and report, on fixture summaries (the real sweep runs in test_pipeline)."""

from __future__ import annotations

import json

import pytest

from ganaug.errors import GanaugError
from ganaug.params import parse_params
from ganaug.sweep import build_report, experiment_name, size_overrides


def test_each_size_keeps_the_full_size_optimiser_steps():
    params = parse_params({"data": {"per_class": 100}, "train": {"epochs": 40}, "experiments": {"epochs": 12}})
    assert size_overrides(params, 10) == ["data.per_class=10", "experiments.epochs=120", "train.epochs=400"]
    assert size_overrides(params, 30) == ["data.per_class=30", "experiments.epochs=40", "train.epochs=134"]
    assert size_overrides(params, 100) == []  # the reference size runs the params as they are
    with pytest.raises(GanaugError, match="--per-class 200: expected sizes up to data.per_class"):
        size_overrides(params, 200)


def test_experiment_names_differ_by_overrides():
    assert experiment_name(10, []) == "lowdata-10"
    a, b = experiment_name(10, ["experiments.samplers=[cl-sam]"]), experiment_name(10, ["experiments.samplers=[random]"])
    assert a.startswith("lowdata-10-") and a != b


def summary(real, synth, steps=180):
    rows = {"0x real": {"seeds": dict(enumerate(real)), "steps": steps},
            "cl-sam 1x": {"seeds": dict(enumerate(synth)), "steps": steps}}
    return {"rows": {k: {**v, "seeds": {str(s): a for s, a in v["seeds"].items()}} for k, v in rows.items()},
            "comparisons": [{"row": "cl-sam 1x", "reference": "0x real", "diff": sum(synth) / 3 - sum(real) / 3,
                             "verdict": "better"}]}


def test_report_finds_the_data_saved_against_the_full_real_set(tmp_path):
    summaries = {10: summary([0.60, 0.62, 0.61], [0.66, 0.67, 0.68]),
                 50: summary([0.76, 0.78, 0.77], [0.80, 0.81, 0.82]),
                 100: summary([0.79, 0.80, 0.81], [0.78, 0.80, 0.79])}
    table = build_report(summaries, tmp_path)
    saved = json.loads((tmp_path / "data_saved.json").read_text())
    # real-only at 100/class: 80.0; cl-sam reaches it at 50/class, real alone at no smaller size
    assert saved == {"reference_per_class": 100, "reference_accuracy": 0.8,
                     "smallest_per_class": {"0x real": None, "cl-sam 1x": 50}}
    row = table[(table["per_class"] == 50) & (table["row"] == "cl-sam 1x")].iloc[0]
    assert row["diff_vs_full_real"] == pytest.approx(0.01) and row["diff_vs_full_real_ci_low"] < 0.01 < row["diff_vs_full_real_ci_high"]
    assert row["n"] == 3 and row["vs_real_same_size"] == "better"
    md = (tmp_path / "lowdata.md").read_text()
    assert "| 50 | cl-sam 1x | 180 | 3 | 81.00 ± 1.00 |" in md and "cl-sam 1x 50" in md
    assert (tmp_path / "low_data.png").stat().st_size > 1000
