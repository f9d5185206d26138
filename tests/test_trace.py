"""`python -m ganaug trace` without the run's MLflow store (a colleague's git clone + dvc pull): traced from the
run's own record. And a GanaugError from any `python -m ganaug <command>` ends in one line, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ganaug import trace
from ganaug.digests import dvc_md5
from tests.conftest import write_params

RUN = "reports/runs/augment/random-1-s0"


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def clone(root: Path, select_seed: int = 3) -> dict[str, str]:
    """A clone after git clone + dvc pull: params.yaml, the run's inputs, its metrics.json and dvc.lock, all
    committed; no MLflow store. The lock records ``select_seed``; returns the run's input md5s."""
    root.mkdir()
    write_params(root, {"select": {"seed": 3}, "experiments": {"epochs": 4}})
    (root / "data/prepared").mkdir(parents=True)
    (root / "data/prepared/train.npz").write_bytes(b"real images")
    (root / "data/selected/augment").mkdir(parents=True)
    (root / "data/selected/augment/random-1-s0.parquet").write_bytes(b"chosen ids")
    inputs = {p: dvc_md5(root / p) for p in ("data/prepared", "data/selected/augment/random-1-s0.parquet")}
    metrics = {"test_accuracy": 0.8125, "mode": "augment", "method": "random", "amount": "1", "seed": 0}
    (root / RUN).mkdir(parents=True)
    (root / RUN / "metrics.json").write_text(json.dumps({**metrics, "inputs": inputs}, indent=2) + "\n")
    out = {"path": f"{RUN}/metrics.json", "hash": "md5", "md5": dvc_md5(root / RUN / "metrics.json")}
    params = {"params.yaml": {"experiments.epochs": 4, "select": {"seed": select_seed}}}
    lock = {"schema": "2.0", "stages": {"augment@random-1-0": {"cmd": "...", "params": params, "outs": [out]}}}
    (root / "dvc.lock").write_text(yaml.safe_dump(lock))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "a run")
    return inputs


def test_without_the_runs_mlflow_store_trace_answers_from_its_record(tmp_path, monkeypatch, capsys):
    inputs = clone(tmp_path / "clone")
    store = f"sqlite:///{tmp_path / 'clone' / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path / "clone")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    assert trace.main([RUN]) == 0
    out = capsys.readouterr().out
    assert f"the run lives on another store (not found in {store})" in out
    assert "stage augment@random-1-0  test_accuracy 0.8125" in out
    assert f"git commit {git(tmp_path / 'clone', 'rev-parse', 'HEAD')}  same code as this workspace" in out
    assert all(f"{md5}  same" in out for md5 in inputs.values())
    assert "holds exactly this run's inputs and params" in out
    assert not (tmp_path / "clone" / "mlflow.db").exists()  # tracing opened no store, so it made none

    clone(tmp_path / "other", select_seed=7)  # the run chose with another seed than params.yaml says
    monkeypatch.chdir(tmp_path / "other")
    assert trace.main([f"{RUN}/metrics.json"]) == 1
    out = capsys.readouterr().out
    assert "select.seed: 7 -> 3" in out and "(1 differ: select.seed)" in out
    assert "experiments.epochs" not in out  # the same: 4 in both


@pytest.mark.parametrize("command", [["ganaug", "trace"], ["ganaug.trace"]])
def test_a_ganaug_error_from_a_command_is_one_line(tmp_path, command):
    write_params(tmp_path)
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'none.db'}", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", *command, "no-such-run"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("ganaug: error: no-such-run: neither a run's report folder"), proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
