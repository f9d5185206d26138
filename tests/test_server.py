"""A team's shared tracking server: a real `mlflow server` on a free loopback port, a tracked stage
run as its own process with MLFLOW_TRACKING_URI pointing there, its run and artifacts read back over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.test_experiment import make_params, project  # noqa: F401 (project: the fixture, a small on-disk project)

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """`mlflow server` as `make server` starts it: SQLite backend, a local artifact root it serves."""
    port = free_port()
    store = tmp_path / "server"
    store.mkdir()
    proc = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}", "--artifacts-destination", str(store / "artifacts")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"mlflow server did not start: {proc.stderr.read()[-2000:]}")
        time.sleep(0.5)
    yield url, store
    proc.terminate()
    proc.wait(timeout=30)


def test_a_stage_logs_to_a_shared_server_and_its_run_reads_back_over_http(project, server, monkeypatch):  # noqa: F811
    import mlflow
    from mlflow.tracking import MlflowClient

    url, store = server
    (project / "params.yaml").write_text(yaml.safe_dump(make_params().model_dump(), sort_keys=False))
    env = {**os.environ, "MLFLOW_TRACKING_URI": url}
    env.pop("DVC_ROOT", None)
    proc = subprocess.run([str(BIN / "python"), "-m", "ganaug.stages.experiment", "augment", "cl-sam", "1", "0"],
                          cwd=project, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (project / "mlflow.db").exists()  # nothing went to a local store

    client = MlflowClient(tracking_uri=url)  # everything below goes over HTTP
    experiment = client.get_experiment_by_name("ganaug-tests")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.data.tags["dvc.stage"] == "train@cl-sam-1-0" and run.data.tags["sampler"] == "cl-sam"
    local = json.loads((project / "reports/runs/augment/cl-sam-1-s0/metrics.json").read_text())
    assert run.data.metrics["test_accuracy"] == pytest.approx(local["test_accuracy"])
    names = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert {"report/metrics.json", "report/summary.csv", "report/confusion.png"} <= names
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    mlflow.set_tracking_uri(url)
    fetched = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="report/metrics.json",
                                                      dst_path=str(project / "downloaded")))
    assert json.loads(fetched.read_text()) == local  # the bytes the stage wrote, served back by the server
    assert any((store / "artifacts").rglob("confusion.png"))  # stored in the server's artifact root
