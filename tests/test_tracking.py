"""MLflow runs carry params, the git state and the DVC content hashes of their inputs."""

from __future__ import annotations

import hashlib
import json

import mlflow
import pytest

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
    with tracked_run(
        "train_scorer", tiny_params, {"data/prepared": data}, {"mode": "real-only"}, run_name="real-only"
    ) as run:
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


def test_a_new_store_is_wal_and_its_experiment_is_for_model_training(tmp_path, tiny_params, monkeypatch):
    import sqlite3

    monkeypatch.chdir(tmp_path)
    store = tmp_path / "store" / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    with tracked_run("train_scorer", tiny_params, {}, run_name="real-only") as run:
        mlflow.log_artifact(__file__)
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # queue workers and the UI do not block
    experiment = mlflow.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI opens on the runs
    artifacts = tmp_path / "store" / "mlruns" / experiment.name  # beside the store, never in DVC's temporary copy
    assert experiment.artifact_location == artifacts.as_uri()
    assert (artifacts / run.info.run_id / "artifacts" / "test_tracking.py").is_file()


def test_ensure_experiment_marks_an_old_experiment_and_survives_a_creation_race(tmp_path):
    from ganaug.tracking import ensure_experiment

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    old = client.create_experiment("made-before")  # no kind tag
    assert ensure_experiment(client, "made-before", tmp_path) == old
    assert client.get_experiment(old).tags["mlflow.experimentKind"] == "custom_model_development"

    class LateReader:  # another worker creates the experiment between our lookup and our create
        def __init__(self):
            self.lookups = 0

        def __getattr__(self, name):
            return getattr(client, name)

        def get_experiment_by_name(self, name):
            self.lookups += 1
            if self.lookups == 1:
                client.create_experiment(name)
                return None
            return client.get_experiment_by_name(name)

    raced = LateReader()
    got = ensure_experiment(raced, "raced", tmp_path)
    assert got == client.get_experiment_by_name("raced").experiment_id and raced.lookups == 2


def test_a_dvc_experiments_stage_runs_nest_under_one_parent_run(tmp_path, tiny_params, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DVC_EXP_BASELINE_REV", "abc123")
    ids = {}
    for exp_name, stage in (("seed1", "train_scorer"), ("seed1", "train_gan"), ("seed2", "train_scorer")):
        monkeypatch.setenv("DVC_EXP_NAME", exp_name)
        with tracked_run(stage, tiny_params, {}) as run:
            ids[exp_name, stage] = run.info.run_id
    runs = {key: mlflow.get_run(run_id) for key, run_id in ids.items()}
    parents = {key: run.data.tags["mlflow.parentRunId"] for key, run in runs.items()}
    assert parents["seed1", "train_scorer"] == parents["seed1", "train_gan"] != parents["seed2", "train_scorer"]
    parent = mlflow.get_run(parents["seed1", "train_gan"])
    assert parent.info.run_name == "seed1" and parent.info.status == "FINISHED"
    assert parent.data.tags["dvc.experiment"] == "seed1" and "dvc.stage" not in parent.data.tags
    # the documented UI filter selects the stage runs of one DVC experiment, without the parent
    found = mlflow.search_runs(
        experiment_ids=[parent.info.experiment_id], filter_string="tags.`dvc.exp_name` = 'seed1'", output_format="list"
    )
    assert sorted(r.data.tags["dvc.stage"] for r in found) == ["train_gan", "train_scorer"]


def test_search_literals_and_artifact_roots(tmp_path, monkeypatch):
    from ganaug.errors import GanaugError
    from ganaug.tracking import artifact_root, quoted

    assert quoted("seed1") == "'seed1'" and quoted("it's") == '"it\'s"'
    with pytest.raises(GanaugError, match="both kinds of quote"):
        quoted("""a'b"c""")
    monkeypatch.chdir(tmp_path)
    assert artifact_root("sqlite:///mlflow.db") == tmp_path.resolve()  # a relative store: an absolute root
    assert artifact_root("http://server:5000") is None
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    name = "it's"  # a valid DVC experiment (git ref) name
    experiment_id = client.create_experiment("q")
    client.create_run(experiment_id, tags={"dvc.experiment": name})
    assert len(client.search_runs([experiment_id], f"tags.`dvc.experiment` = {quoted(name)}")) == 1


def test_any_class_name_logs_under_a_safe_key_that_maps_back_to_it(tmp_path, tiny_params, monkeypatch):
    from mlflow.utils.validation import _validate_metric_name

    from ganaug.tracking import log_per_class, per_class_keys

    names = ["50% off (new)", "dog (small)", "T-shirt/top", "a&b", "a%b", "..", "/etc", "Käfer", " spaced "]
    keys = per_class_keys("test_acc", names)
    assert list(keys.values()) == names and len(set(keys)) == len(names)  # one key per class, in order
    for key in keys:
        _validate_metric_name(key)  # MLflow's own rule: raises on a key it would refuse
    assert (
        keys["test_acc.T-shirt-top"] == "T-shirt/top"
        and keys["test_acc.a_b"] == "a&b"
        and keys["test_acc.a_b_4"] == "a%b"
    )
    tricky = per_class_keys("test_acc", ["x_1", "x", "x ", "y" * 300])  # a suffix that is another class's key; too long
    assert list(tricky.values()) == ["x_1", "x", "x ", "y" * 300] and all(len(k) <= 250 for k in tricky)
    for key in tricky:
        _validate_metric_name(key)
    monkeypatch.chdir(tmp_path)
    values = {name: i / 10 for i, name in enumerate(names)}
    with tracked_run("train_scorer", tiny_params, {}) as run:
        log_per_class("test_acc", values)
    logged = mlflow.get_run(run.info.run_id).data.metrics
    back = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/test_acc.classes.json")
    assert {back[key]: value for key, value in logged.items()} == values
