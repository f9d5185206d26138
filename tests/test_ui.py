"""`make ui`: the runs page's address, and what a real browser shows there."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys

import mlflow
import pytest
import yaml

from ganaug.ui import runs_url
from tests.conftest import TINY


def test_runs_url_sorts_by_test_accuracy_and_filters_one_dvc_experiment():
    url = runs_url("http://127.0.0.1:5000", "7", "seed1")
    assert url.startswith("http://127.0.0.1:5000/#/experiments/7/runs?")
    assert "orderByKey=metrics.%60test_accuracy%60&orderByAsc=false" in url
    assert url.endswith("searchFilter=tags.%60dvc.exp_name%60%20%3D%20%27seed1%27")
    assert "searchFilter" not in runs_url("http://h:1", "7")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium for the screenshot")
def test_ui_screenshot_of_the_runs_page(tmp_path, tiny_params, monkeypatch):
    """A real `mlflow ui` on a store with one run, a real headless Chromium: a full-size page image."""
    from ganaug.tracking import tracked_run

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(TINY))
    store = tmp_path / "mlflow.db"
    env_uri = f"sqlite:///{store}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env_uri)  # the store tracked_run and the UI both use
    with tracked_run("train_scorer", tiny_params, {}, run_name="real-only"):
        mlflow.log_metric("test_accuracy", 0.9)
    experiment = mlflow.MlflowClient(env_uri).get_experiment_by_name(TINY["mlflow"]["experiment"])
    client = mlflow.MlflowClient(env_uri)
    client.delete_experiment_tag(experiment.experiment_id, "mlflow.experimentKind")  # a store from before the kind
    out = tmp_path / "runs.png"
    proc = subprocess.run(
        [sys.executable, "-m", "ganaug.ui", "--screenshot", str(out)],
        cwd=tmp_path,
        env={**__import__("os").environ, "MLFLOW_TRACKING_URI": env_uri},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "/#/experiments/" in proc.stdout and "/runs?" in proc.stdout
    header = out.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", header[16:24]) == (1600, 1000)
    assert out.stat().st_size > 50_000  # a rendered page, not a blank one (blank: ~10 KB)
    experiment = client.get_experiment(experiment.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # make ui marked it
    assert len(client.search_runs([experiment.experiment_id])) == 1
