"""A team's shared tracking server: a real `mlflow server` (as `make server` starts it) on a free loopback port, a
tracked stage run as its own process with MLFLOW_TRACKING_URI pointing there, its run and artifacts read back over
HTTP; artifacts in a local folder or an S3 bucket (moto's server); logins when the server is shared."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from ganaug.errors import GanaugError
from ganaug.server import server_command
from tests.servers import S3_KEYS, mlflow_server, moto_s3, s3_keys
from tests.test_experiment import make_params, project  # noqa: F401 (project: the fixture, a small on-disk project)

BIN = Path(sys.executable).parent


def run_stage(project: Path, url: str, **env) -> None:  # noqa: F811
    """One tracked training stage, as dvc runs it, logging to the server at ``url``."""
    (project / "params.yaml").write_text(yaml.safe_dump(make_params().model_dump(), sort_keys=False))
    env = {**os.environ, "MLFLOW_TRACKING_URI": url, **env}
    env.pop("DVC_ROOT", None)
    proc = subprocess.run(
        [str(BIN / "python"), "-m", "ganaug.stages.experiment", "augment", "cl-sam", "1", "0"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (project / "mlflow.db").exists()  # nothing went to a local store


def check_run_reads_back(project: Path, url: str) -> None:  # noqa: F811
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=url)  # everything below goes over HTTP
    experiment = client.get_experiment_by_name("ganaug-tests")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.data.tags["dvc.stage"] == "augment@cl-sam-1-0" and run.data.tags["method"] == "cl-sam"
    local = json.loads((project / "reports/runs/augment/cl-sam-1-s0/metrics.json").read_text())
    assert run.data.metrics["test_accuracy"] == pytest.approx(local["test_accuracy"])
    names = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert {"report/metrics.json", "report/summary.csv", "report/confusion.png"} <= names
    mlflow.set_tracking_uri(url)
    fetched = Path(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="report/metrics.json", dst_path=str(project / "downloaded")
        )
    )
    assert json.loads(fetched.read_text()) == local  # the bytes the stage wrote, served back by the server


def test_a_stage_logs_to_a_shared_server_and_its_run_reads_back_over_http(project, tmp_path, monkeypatch):  # noqa: F811
    with mlflow_server(tmp_path / "server", str(tmp_path / "server/artifacts")) as url:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        run_stage(project, url)
        check_run_reads_back(project, url)
    assert any((tmp_path / "server/artifacts").rglob("confusion.png"))  # stored in the server's artifact root


def test_a_server_with_s3_artifacts_stores_them_in_the_bucket(project, tmp_path, monkeypatch):  # noqa: F811
    with moto_s3("team-runs") as s3:
        # only the server talks to S3 (artifacts are proxied): the endpoint and keys are in its environment alone
        with mlflow_server(
            tmp_path / "server", "s3://team-runs/mlruns", env={**S3_KEYS, "MLFLOW_S3_ENDPOINT_URL": s3}
        ) as url:
            monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
            run_stage(project, url)
            check_run_reads_back(project, url)
        stored = s3_keys(s3, "team-runs", "mlruns/")
    assert any(k.endswith("report/metrics.json") for k in stored) and any(
        k.endswith("report/confusion.png") for k in stored
    )


def test_an_open_host_always_gets_logins_and_needs_an_admin_password_from_outside_git(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD", raising=False)
    command, env = server_command("127.0.0.1", 5000, "sqlite:///s.db", "art")
    assert "--app-name" not in command and env == {}  # this machine only: no logins by default
    with pytest.raises(GanaugError, match="MLFLOW_AUTH_ADMIN_PASSWORD or write it to .mlflow-admin-password"):
        server_command("0.0.0.0", 5000, "sqlite:///s.db", "art")
    (tmp_path / ".mlflow-admin-password").write_text("s3cret\n")
    command, env = server_command("0.0.0.0", 5000, "sqlite:///s.db", "art")
    assert command[-2:] == ["--app-name", "basic-auth"] and env["MLFLOW_AUTH_ADMIN_PASSWORD"] == "s3cret"
    assert "s3cret" not in Path(env["MLFLOW_AUTH_CONFIG_PATH"]).read_text()  # the password is in no file it writes
    assert (
        server_command("0.0.0.0", 5000, "sqlite:///s.db", "art")[1]["MLFLOW_FLASK_SERVER_SECRET_KEY"]
        == env["MLFLOW_FLASK_SERVER_SECRET_KEY"]
    )  # one key across restarts
    secrets = [".mlflow-admin-password", ".mlflow-server-secret", "mlflow-auth.ini", "mlflow-auth.db"]
    ignored = subprocess.run(
        ["git", "check-ignore", *secrets], cwd=Path(__file__).parents[1], capture_output=True, text=True
    )
    assert ignored.stdout.split() == secrets  # git ignores the password file, the auth config and the user store


def request(url: str, user: str | None = None, password: str | None = None, body: dict | None = None) -> int:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode() if body is not None else None, headers={"Content-Type": "application/json"}
    )
    if user:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as err:
        return err.code


def test_a_server_with_logins_refuses_strangers_and_keeps_an_experiment_its_owners(project, tmp_path, monkeypatch):  # noqa: F811
    import mlflow
    from mlflow.exceptions import MlflowException

    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", "admin-password-1")
    with mlflow_server(tmp_path / "server", str(tmp_path / "server/artifacts"), auth=True) as url:
        search = f"{url}/api/2.0/mlflow/experiments/search"
        assert request(search, body={"max_results": 1}) == 401  # anonymous: refused
        assert request(search, "admin", "wrong", body={"max_results": 1}) == 401
        admin = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": "admin-password-1"}
        for user in ("alice", "bob"):
            out = subprocess.run(
                [str(BIN / "python"), "-m", "ganaug.server", "add-user", user, "--url", url],
                capture_output=True,
                text=True,
                env={**os.environ, **admin, "GANAUG_NEW_PASSWORD": f"{user}-password-1"},
            )
            assert out.returncode == 0, out.stderr[-2000:]
        # alice logs a run with a pipeline stage, unchanged: MLflow's own credential variables
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "alice-password-1")
        run_stage(project, url, MLFLOW_TRACKING_USERNAME="alice", MLFLOW_TRACKING_PASSWORD="alice-password-1")
        check_run_reads_back(project, url)
        client = mlflow.MlflowClient(url)
        [run] = client.search_runs([client.get_experiment_by_name("ganaug-tests").experiment_id])
        # bob may read alice's experiment, but not change it
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bob")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "bob-password-1")
        assert client.get_run(run.info.run_id).data.metrics["test_accuracy"] == run.data.metrics["test_accuracy"]
        with pytest.raises(MlflowException, match="PERMISSION_DENIED|Permission denied"):
            client.log_metric(run.info.run_id, "test_accuracy", 1.0)
        with pytest.raises(MlflowException, match="PERMISSION_DENIED|Permission denied"):
            client.delete_run(run.info.run_id)
        assert client.get_run(run.info.run_id).data.metrics["test_accuracy"] == run.data.metrics["test_accuracy"]
