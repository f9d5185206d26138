"""MLflow runs carry params, the git state and the DVC content hashes of their inputs."""

from __future__ import annotations

import hashlib
import json

import mlflow

from ganaug.tracking import dvc_md5, log_epoch, tracked_run, tracking_uri


def test_dvc_md5_of_a_file_and_a_folder(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "b.txt").write_bytes(b"bee")
    (tmp_path / "d" / "sub" / "a.txt").write_bytes(b"ay")
    assert dvc_md5(tmp_path / "d" / "b.txt") == hashlib.md5(b"bee").hexdigest()
    listing = [
        {"md5": hashlib.md5(b"bee").hexdigest(), "relpath": "b.txt"},
        {"md5": hashlib.md5(b"ay").hexdigest(), "relpath": "sub/a.txt"},
    ]
    assert dvc_md5(tmp_path / "d") == hashlib.md5(json.dumps(listing, sort_keys=True).encode()).hexdigest() + ".dir"


def test_the_store_is_the_projects_even_from_dvcs_temporary_copy(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    project, temp_copy = tmp_path / "project", tmp_path / "tmp-exp-copy"
    temp_copy.mkdir()
    monkeypatch.chdir(temp_copy)  # where `dvc exp run --temp` / --queue runs a stage
    monkeypatch.setenv("DVC_ROOT", str(project))  # what DVC sets for it: the project's root
    assert tracking_uri() == f"sqlite:///{project.resolve() / 'mlflow.db'}"
    monkeypatch.delenv("DVC_ROOT")
    assert tracking_uri() == f"sqlite:///{temp_copy.resolve() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")  # an explicit store always wins
    assert tracking_uri() == "http://tracking:5000"


def test_tracked_run_logs_params_tags_inputs_and_metrics(tmp_path, tiny_params, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no git here: the commit tag says so instead of failing
    data = tmp_path / "prepared"
    data.mkdir()
    (data / "train.npz").write_bytes(b"x")
    with tracked_run("train_scorer", tiny_params, {"data/prepared": data}, {"mode": "real-only"}, run_name="real-only") as run:
        log_epoch({"epoch": 1, "train_loss": 2.0})
        log_epoch({"epoch": 2, "train_loss": 1.0})
    got = mlflow.get_run(run.info.run_id)
    assert got.info.run_name == "real-only"
    assert got.data.params["data.name"] == "digits" and got.data.params["train.augment.hflip"] == "False"
    assert got.data.tags["dvc.stage"] == "train_scorer" and got.data.tags["git.commit"] == "none"
    assert got.data.tags["input.data/prepared.md5"] == dvc_md5(data)
    [dataset_input] = got.inputs.dataset_inputs
    assert dataset_input.dataset.digest == dvc_md5(data) and dataset_input.dataset.name == "data/prepared"
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "train_loss")
    assert [(m.step, m.value) for m in history] == [(1, 2.0), (2, 1.0)]
