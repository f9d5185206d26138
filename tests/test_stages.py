"""Stages as DVC runs them: bad input is one line on stderr and exit status 1, nothing written."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import write_params


def test_bad_params_stop_a_stage_with_one_line(tmp_path):
    write_params(tmp_path, {"data": {"name": "digits", "per_class": 0}})
    proc = subprocess.run([sys.executable, "-m", "ganaug.stages.prepare"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 1
    assert (
        proc.stderr.strip() == "ganaug: error: params.yaml: data.per_class: must be a positive integer or 'all' (got 0)"
    )
    # nothing but the timing log (logs/stage-times.jsonl, never a DVC output) records that the stage ran and failed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs", "params.yaml"]
    assert [p.name for p in (tmp_path / "logs").iterdir()] == ["stage-times.jsonl"]


def test_prepare_without_fetch_names_the_missing_archive(tmp_path):
    write_params(tmp_path, {"data": {"name": "digits"}})
    proc = subprocess.run([sys.executable, "-m", "ganaug.stages.prepare"], cwd=tmp_path, capture_output=True, text=True)
    assert (
        proc.returncode == 1
        and "data/raw/digits: raw data not found" in proc.stderr
        and len(proc.stderr.strip().splitlines()) == 1
    )


def test_plan_names_the_optional_stages_each_planned_run_needs(tmp_path):
    from ganaug.experiment.plan import optional_stage_plan
    from tests.conftest import params_with

    def needed(experiments: dict) -> dict[str, list[str]]:
        plan = optional_stage_plan(params_with({"experiments": experiments}))
        return {stage: entry["needed_by"] for stage, entry in plan.items()}

    assert needed({"samplers": ["random", "cl-sam", "clip"]}) == {
        "rl_policy": [],
        "projection": [],
        "pseudo_label": [],
        "retrieval": [],
    }
    assert needed({"samplers": ["random", "dapper", "pseudo-label", "retrieval"], "own": ["rl"]}) == {
        "rl_policy": ["rl"],
        "projection": ["dapper"],
        "pseudo_label": ["pseudo-label"],
        "retrieval": ["retrieval"],
    }
    # a mode's sampler counts only when the mode plans runs: replace_sampler rl with no fractions needs no agent
    assert needed({"samplers": ["random"], "replace_sampler": "rl", "replace": []})["rl_policy"] == []
    assert needed({"samplers": ["random"], "replace_sampler": "rl", "replace": [0.5]})["rl_policy"] == ["rl"]
    assert needed({"samplers": ["rl"], "ratios": []})["rl_policy"] == []  # no ratio: no augment run


def test_a_stage_no_run_needs_writes_its_empty_outputs_without_torch(tmp_path):
    """rl_policy, projection, pseudo_label and retrieval skip when the plan says no run needs them: their outputs
    say why, and the process never imports torch (the skip costs a Python start, not a training stage's start-up)."""
    import json

    from ganaug.gan.pool_format import open_pool

    write_params(tmp_path, {"experiments": {"samplers": ["random"]}})
    (tmp_path / "data/prepared").mkdir(parents=True)
    classes = {"classes": ["a", "b"], "image_size": 8, "channels": 1}
    (tmp_path / "data/prepared/classes.json").write_text(json.dumps(classes))
    plan = subprocess.run([sys.executable, "-m", "ganaug.stages.plan"], cwd=tmp_path, capture_output=True, text=True)
    assert plan.returncode == 0, plan.stderr
    readers = {"rl_policy": "rl", "projection": "dapper", "pseudo_label": "pseudo-label", "retrieval": "retrieval"}
    for stage, sampler in readers.items():
        probe = f"import sys, ganaug.stages.{stage} as s; s.run(); assert 'torch' not in sys.modules, 'torch loaded'"
        proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert f"{stage}: skipped (not needed: no planned run uses sampler {sampler} " in proc.stdout
    assert json.loads((tmp_path / "reports/metrics/rl.json").read_text())["skipped"].startswith("not needed")
    assert (tmp_path / "data/rl/skipped.json").is_file() and not (tmp_path / "data/rl/keep.parquet").exists()
    for pool, sampler in (("projection", "dapper"), ("pseudo", "pseudo-label"), ("retrieval", "retrieval")):
        empty = open_pool(tmp_path / "data/synthetic" / pool)
        assert len(empty) == 0 and empty.images.shape[1:] == (8, 8, 1) and sampler in empty.meta["skipped"]
    assert (tmp_path / "reports/projection/grid.png").stat().st_size > 0


@pytest.mark.parametrize(
    "experiments, line",
    [
        ({"samplers": ["random", "foo"]}, "experiments.samplers: unknown sampler 'foo' (expected one of: random, "),
        ({"baselines": ["real", "mirror"]}, "experiments.baselines: unknown baseline 'mirror' (expected one of: real,"),
        ({"replace_sampler": "best"}, "experiments.replace_sampler: unknown sampler 'best'"),
        ({"count_sampler": "best"}, "experiments.count_sampler: unknown sampler 'best'"),
        # random chooses what it is given a quota for; only rl also chooses how many
        ({"own": ["random"]}, "experiments.own: unknown own-choice sampler 'random' (expected one of: rl)"),
    ],
)
def test_the_plan_stage_refuses_an_unknown_name_in_one_line(experiments, line):
    from ganaug.errors import GanaugError
    from ganaug.stages.plan import check_names
    from tests.conftest import params_with

    with pytest.raises(GanaugError) as err:
        check_names(params_with({"experiments": experiments}).experiments)
    assert str(err.value).startswith(f"params.yaml: {line}") and "\n" not in str(err.value)


def test_an_unknown_sampler_stops_dvc_repro_at_the_plan_stage_in_one_line(tmp_path):
    write_params(tmp_path, {"experiments": {"samplers": ["random", "foo"]}})
    proc = subprocess.run([sys.executable, "-m", "ganaug.stages.plan"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 1 and not (tmp_path / "data/plan").exists()
    assert proc.stderr.startswith("ganaug: error: params.yaml: experiments.samplers: unknown sampler 'foo' ")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_lookup_returns_the_entry_and_names_the_key_and_the_known_names():
    from ganaug.errors import GanaugError
    from ganaug.registry import lookup

    registry = {"cgan": 1, "style": 2}
    assert lookup(registry, "style", "gan.arch", "architecture") == 2
    with pytest.raises(GanaugError) as err:
        lookup(registry, "biggan", "gan.arch", "architecture")
    assert str(err.value) == "params.yaml: gan.arch: unknown architecture 'biggan' (expected one of: cgan, style)"
