"""Stages as DVC runs them: bad input is one line on stderr and exit status 1, nothing written."""

from __future__ import annotations

import subprocess
import sys


def test_bad_params_stop_a_stage_with_one_line(tmp_path):
    (tmp_path / "params.yaml").write_text("data:\n  name: digits\n  per_class: 0\n")
    proc = subprocess.run([sys.executable, "-m", "ganaug.stages.prepare"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 1
    assert (
        proc.stderr.strip() == "ganaug: error: params.yaml: data.per_class: must be a positive integer or 'all' (got 0)"
    )
    # nothing but the timing log (logs/stage-times.jsonl, never a DVC output) records that the stage ran and failed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs", "params.yaml"]
    assert [p.name for p in (tmp_path / "logs").iterdir()] == ["stage-times.jsonl"]


def test_prepare_without_fetch_names_the_missing_archive(tmp_path):
    (tmp_path / "params.yaml").write_text("data:\n  name: digits\n")
    proc = subprocess.run([sys.executable, "-m", "ganaug.stages.prepare"], cwd=tmp_path, capture_output=True, text=True)
    assert (
        proc.returncode == 1
        and "data/raw/digits: raw data not found" in proc.stderr
        and len(proc.stderr.strip().splitlines()) == 1
    )


def test_plan_names_the_optional_stages_each_planned_run_needs(tmp_path):
    from ganaug.experiment.plan import optional_stage_plan
    from ganaug.params import parse_params

    def needed(experiments: dict) -> dict[str, list[str]]:
        plan = optional_stage_plan(parse_params({"experiments": experiments}))
        return {stage: entry["needed_by"] for stage, entry in plan.items()}

    assert needed({"samplers": ["random", "cl-sam"]}) == {"rl_policy": [], "projection": [], "pseudo_label": []}
    assert needed({"samplers": ["random", "dapper", "pseudo-label"], "own": ["rl"]}) == {
        "rl_policy": ["rl"],
        "projection": ["dapper"],
        "pseudo_label": ["pseudo-label"],
    }
    # a mode's sampler counts only when the mode plans runs: replace_sampler rl with no fractions needs no agent
    assert needed({"samplers": ["random"], "replace_sampler": "rl", "replace": []})["rl_policy"] == []
    assert needed({"samplers": ["random"], "replace_sampler": "rl", "replace": [0.5]})["rl_policy"] == ["rl"]
    assert needed({"samplers": ["rl"], "ratios": []})["rl_policy"] == []  # no ratio: no augment run


def test_a_stage_no_run_needs_writes_its_empty_outputs_without_torch(tmp_path):
    """rl_policy, projection and pseudo_label skip when the plan says no run needs them: their outputs say why,
    and the process never imports torch (the skip costs a Python start, not a training stage's start-up)."""
    import json

    from ganaug.gan.pool_format import open_pool

    (tmp_path / "params.yaml").write_text("experiments:\n  samplers: [random]\n")
    (tmp_path / "data/prepared").mkdir(parents=True)
    classes = {"classes": ["a", "b"], "image_size": 8, "channels": 1}
    (tmp_path / "data/prepared/classes.json").write_text(json.dumps(classes))
    plan = subprocess.run([sys.executable, "-m", "ganaug.stages.plan"], cwd=tmp_path, capture_output=True, text=True)
    assert plan.returncode == 0, plan.stderr
    readers = {"rl_policy": "rl", "projection": "dapper", "pseudo_label": "pseudo-label"}
    for stage, sampler in readers.items():
        probe = f"import sys, ganaug.stages.{stage} as s; s.run(); assert 'torch' not in sys.modules, 'torch loaded'"
        proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert f"{stage}: skipped (not needed: no planned run uses sampler {sampler} " in proc.stdout
    assert json.loads((tmp_path / "reports/metrics/rl.json").read_text())["skipped"].startswith("not needed")
    assert (tmp_path / "data/rl/skipped.json").is_file() and not (tmp_path / "data/rl/keep.parquet").exists()
    for pool, sampler in (("projection", "dapper"), ("pseudo", "pseudo-label")):
        empty = open_pool(tmp_path / "data/synthetic" / pool)
        assert len(empty) == 0 and empty.images.shape[1:] == (8, 8, 1) and sampler in empty.meta["skipped"]
    assert (tmp_path / "reports/projection/grid.png").stat().st_size > 0
