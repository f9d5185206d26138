"""The real pipeline: one `dvc repro` of a user's image folder with tiny params in a fresh git + DVC repository (the
session's `pipeline` fixture), then what a user does next: read the outputs and the MLflow runs, repro again, push
and pull, trace a number, run DVC experiments, sweeps and a queue. The sweeps and the queue are the `slow` tier
(`make test-all`, which CI runs); everything else is in `make test`."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml

from ganaug.experiment.plan import MODES
from tests.conftest import PIPELINE, TINY, params_with
from tests.project import BIN, DIGIT_CLASSES, ODD_CLASS, ROOT, dvc, restore, sh

EXPERIMENT_MODES = list(MODES)  # each mode's stages are <mode>@...


def assert_figure(path: Path, min_side: int = 200) -> None:
    """A real plot: a PNG of a plausible size whose pixels vary (the "no figure" placeholder is one flat colour)."""
    from PIL import Image

    with Image.open(path) as im:
        pixels = np.asarray(im.convert("L"), np.float32)
    assert min(pixels.shape) >= min_side and pixels.std() > 10, (path, pixels.shape, float(pixels.std()))


def plain_runs(project: Path) -> list:
    """The MLflow runs of the fixture's `dvc repro` (not of a DVC experiment another test ran)."""
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")  # not set globally: other tests keep theirs
    runs = client.search_runs([client.get_experiment_by_name(TINY["mlflow"]["experiment"]).experiment_id])
    return [r for r in runs if "dvc.exp_name" not in r.data.tags]


def test_repro_writes_parseable_outputs_above_chance(pipeline):
    for path in (
        "data/raw/folder/0/000.png",
        "data/prepared/train.npz",
        "data/prepared/classes.json",
        "models/scorer/model.safetensors",
        "models/scorer/config.json",
        "reports/scorer/summary.csv",
        "reports/scorer/confusion.png",
    ):
        assert (pipeline / path).is_file(), path
    metrics = json.loads((pipeline / "reports/metrics/real-only.json").read_text())
    per_class = metrics["per_class_accuracy"]
    assert list(per_class) == DIGIT_CLASSES and metrics["test_accuracy"] > 0.6  # chance: 0.1
    assert sum(a > 0.3 for a in per_class.values()) >= 8
    summary = (pipeline / "reports/scorer/summary.csv").read_text().splitlines()
    assert (
        summary[0].startswith("epoch,train_loss,train_acc,val_loss,val_acc")
        and len(summary) == 1 + TINY["train"]["epochs"]
    )
    assert "real-only.json" in dvc(pipeline, "metrics", "show")
    assert_figure(pipeline / "reports/scorer/confusion.png")


def test_the_stages_dvc_builds_are_the_runs_the_report_plans_for_the_full_tiny_matrix(tmp_path):
    """The wiring of every mode and sampler of TINY (4 samplers, 2 baselines), checked with `dvc stage list`,
    which trains nothing: the pipeline fixture itself runs a smaller matrix."""
    from ganaug.experiment.plan import planned_runs

    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params_with(TINY).model_dump(), sort_keys=False))
    dvc(tmp_path, "init", "--no-scm", "-q")
    listed = dvc(tmp_path, "stage", "list", "--name-only").split()
    experiment_stages = sorted(s for s in listed if s.split("@")[0] in EXPERIMENT_MODES)
    assert experiment_stages == sorted(spec.dvc_stage for spec in planned_runs(params_with(TINY)))
    assert (
        len(experiment_stages) == 18
        and "augment@rl-1-1" in experiment_stages
        and "baseline@rotated-copies-0-0" in experiment_stages
    )


def test_mlflow_run_carries_stage_commit_and_the_dvc_hash_of_its_data(pipeline):
    from ganaug.experiment.plan import planned_runs

    lock = yaml.safe_load((pipeline / "dvc.lock").read_text())
    prepared_md5 = next(d["md5"] for d in lock["stages"]["train_scorer"]["deps"] if d["path"] == "data/prepared")
    commit = sh(pipeline, "git", "rev-list", "-1", "HEAD~1").strip()  # the commit the run was made from
    runs = plain_runs(pipeline)
    planned = [spec.dvc_stage for spec in planned_runs(params_with(PIPELINE))]
    assert sorted(r.data.tags["dvc.stage"] for r in runs) == sorted(
        ["train_scorer", "train_gan", "rl_policy", *planned]
    )
    listed = dvc(pipeline, "stage", "list", "--name-only").split()
    assert sorted(planned) == sorted(s for s in listed if s.split("@")[0] in EXPERIMENT_MODES)  # = the dvc.yaml stages
    [run] = [r for r in runs if r.data.tags["dvc.stage"] == "train_scorer"]
    assert run.data.tags["git.commit"] == commit
    assert run.data.tags["input.data/prepared.md5"] == prepared_md5
    assert [i.dataset.digest for i in run.inputs.dataset_inputs] == [prepared_md5]
    assert run.data.params["train.epochs"] == str(TINY["train"]["epochs"])
    assert run.data.metrics["test_accuracy"] > 0.6
    [gan_run] = [r for r in runs if r.data.tags["dvc.stage"] == "train_gan"]
    scorer_md5 = next(o["md5"] for o in lock["stages"]["train_scorer"]["outs"] if o["path"] == "models/scorer")
    assert gan_run.data.tags["input.models/scorer.md5"] == scorer_md5
    assert "fid" in gan_run.data.metrics and "d_loss" in gan_run.data.metrics
    # an augmented run leads to its exact data: the md5s dvc.lock records for its selection (an output
    # of the run's own stage), the pool (generate's output) and the real set (a dependency)
    [aug] = [r for r in runs if r.data.tags["dvc.stage"] == "augment@cl-sam-1-0"]
    locked = {
        o["path"]: o["md5"] for stage in ("augment@cl-sam-1-0", "generate") for o in lock["stages"][stage]["outs"]
    }
    locked.update({d["path"]: d["md5"] for d in lock["stages"]["augment@cl-sam-1-0"]["deps"]})
    for path in ("data/selected/augment/cl-sam-1-s0.parquet", "data/synthetic/pool", "data/prepared"):
        assert aug.data.tags[f"input.{path}.md5"] == locked[path], path
    assert (aug.data.tags["method"], aug.data.tags["amount"], aug.data.tags["seed"], aug.data.tags["mode"]) == (
        "cl-sam",
        "1",
        "0",
        "augment",
    )


def test_gan_pool_and_projection_outputs(pipeline):
    from ganaug.gan.export import load_gan
    from ganaug.gan.pool_format import open_pool

    gan = json.loads((pipeline / "reports/metrics/gan.json").read_text())
    assert gan["steps"] == TINY["gan"]["steps"] and gan["best_step"] in (10, 20) and gan["fid"] > 0
    G, D, config = load_gan(pipeline / "models/gan")
    assert config["best"]["step"] == gan["best_step"]
    pool = open_pool(pipeline / "data/synthetic/pool")
    assert (
        len(pool) == 2 * 300 and pool.images.shape[1:] == (16, 16, 1) and np.bincount(pool.labels).tolist() == [60] * 10
    )
    assert (
        pool.meta["generator_md5"]
        == hashlib.md5((pipeline / "models/gan/generator.safetensors").read_bytes()).hexdigest()
    )
    projection = open_pool(pipeline / "data/synthetic/projection")
    assert len(projection) == 10 * 2 * (1 + 2)  # 2 per class projected, reconstruction + 2 variants each
    assert np.load(pipeline / "data/synthetic/projection/recon_error.npy").shape == (len(projection),)
    for png in ("reports/gan/samples.png", "reports/projection/grid.png"):
        assert_figure(pipeline / png, min_side=100)


def test_scores_selections_runs_and_report(pipeline):
    import pandas as pd

    pool = pd.read_parquet(pipeline / "data/scores/pool.parquet")
    assert len(pool) == 600 and pool["id"].tolist() == list(range(600))
    assert np.load(pipeline / "data/scores/pool_features.npy", mmap_mode="r").shape[0] == 600
    assert len(pd.read_parquet(pipeline / "data/scores/projection.parquet")) == 60
    for sampler in PIPELINE["experiments"]["samplers"]:
        chosen = pd.read_parquet(pipeline / f"data/selected/augment/{sampler}-1-s0.parquet")
        assert np.bincount(chosen["label"]).tolist() == [30] * 10 and chosen["id"].is_unique, sampler
    random_draws = [
        set(pd.read_parquet(pipeline / f"data/selected/augment/random-1-s{k}.parquet")["id"]) for k in (0, 1)
    ]
    assert random_draws[0] != random_draws[1]  # a new draw per seed
    # the scorer and the GAN learned from exactly the prepared training images (recorded ids)
    from ganaug.data.store import ids_digest, load_split

    train_ids = ids_digest(load_split(pipeline / "data/prepared/train.npz").ids)
    assert json.loads((pipeline / "reports/metrics/real-only.json").read_text())["train_ids_md5"] == train_ids
    assert json.loads((pipeline / "reports/metrics/gan.json").read_text())["train_ids_md5"] == train_ids
    rl = json.loads((pipeline / "reports/metrics/rl.json").read_text())
    assert (
        rl["episodes"] == 3
        and 0 <= rl["kept"] <= 600
        and set(rl["confidence"]) == {"kept", "dropped", "spearman_with_keep"}
    )
    keep = pd.read_parquet(pipeline / "data/rl/keep.parquet")
    own = json.loads((pipeline / "reports/runs/own/rl-own-s0/metrics.json").read_text())
    assert own["n_synthetic"] == rl["kept"] == int((keep["keep_prob"] > 0.5).sum())  # real + all the agent keeps
    replaced = json.loads((pipeline / "reports/runs/replace/random-1.0-s0/metrics.json").read_text())
    assert replaced["n_real"] == 0 and replaced["n_synthetic"] == 300  # replace 100 %: synthetic only (CAS)
    table = pd.read_csv(pipeline / "reports/summary.csv")
    assert set(table["row"]) == {
        "real only",
        "random 1x",
        "cl-sam 1x",
        "diverse 1x",
        "rl own choice",
        "random replace 100%",
        "dapper +30",
    }
    assert f"acc.{ODD_CLASS}" in table.columns  # per-class accuracy under the class's own name
    assert (table["n"] == 2).all() and table["ci_low"].notna().all() and (table["ci_low"] <= table["mean"]).all()
    md = (pipeline / "reports/summary.md").read_text()
    assert (
        "| real only |" in md and "### Comparisons (paired over seeds, same optimiser steps)" in md and ODD_CLASS in md
    )
    comp = pd.read_csv(pipeline / "reports/comparisons.csv")
    assert len(comp) == 6 + 2 and (comp["n"] == 2).all()  # 6 rows vs real-only, cl-sam and diverse vs random
    assert set(comp["verdict"]) <= {"better", "worse", "no clear difference"} and (comp["p_holm"] >= comp["p"]).all()
    head = json.loads((pipeline / "reports/metrics/summary.json").read_text())
    assert head["real_only"] == table.set_index("row").loc["real only", "mean"].round(5)
    for png in (
        "accuracy_vs_ratio",
        "replacement",
        "fixed_counts",
        "loss_curves",
        "hist_confidence",
        "hist_realism",
        "extremes_confidence",
        "extremes_realism",
        "gradcam",
    ):
        assert_figure(pipeline / f"reports/figures/{png}.png")


@pytest.mark.parametrize("notebook", ["01-explore-pool.ipynb", "02-compare-runs.ipynb"])
def test_notebooks_execute_on_the_pipeline_outputs(pipeline, notebook, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{pipeline / 'mlflow.db'}")
    nb = nbformat.read(ROOT / "notebooks" / notebook, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(pipeline)}}).execute()
    text = "\n".join(
        str(o.get("text", ""))
        + str(o.get("data", {}).get("text/plain", ""))
        + str(o.get("data", {}).get("text/markdown", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
    )
    assert "Error" not in text
    assert ("600 pool images" in text) if notebook.startswith("01") else ("cl-sam 1x" in text and "augment" in text)


def test_second_repro_does_nothing(pipeline):
    out = dvc(pipeline, "repro")
    assert "Data and pipelines are up to date." in out and "Running stage" not in out


def test_a_warm_server_runs_stages_to_the_same_bytes_and_exit_status(pipeline, tmp_path):
    """`python -m ganaug.warm` hands each stage to a forked copy of a process that has imported the library: a
    training stage run so writes exactly what it wrote as a process of its own, and an error keeps its one line
    and status."""
    import contextlib
    import sys

    from tests.servers import warm_server

    with contextlib.ExitStack() as stack:
        stack.callback(restore, pipeline)
        socket_path = stack.enter_context(warm_server(tmp_path / "warm.sock"))
        metrics = pipeline / "reports/runs/augment/random-1-s0/metrics.json"
        before = metrics.read_bytes()
        env = {**os.environ, "GANAUG_WARM": str(socket_path), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow.db'}"  # the project's store keeps one run a stage
        repro = subprocess.run(
            [str(BIN / "dvc"), "repro", "-f", "-s", "augment@random-1-0"],
            cwd=pipeline,
            env=env,
            capture_output=True,
            text=True,
        )
        assert repro.returncode == 0, repro.stderr[-2000:]
        assert metrics.read_bytes() == before
        assert sh(pipeline, "git", "status", "--porcelain", "--untracked-files=no") == ""
        lines = [json.loads(line) for line in (pipeline / "logs/stage-times.jsonl").read_text().splitlines()]
        assert lines[-1]["stage"] == "augment@random-1-0" and lines[-1].get("warm") and lines[-1]["status"] == "ok"
        bad = subprocess.run(
            [sys.executable, "-m", "ganaug.stages.experiment", "augment", "no-such-sampler", "1", "0"],
            cwd=pipeline,
            env=env,
            capture_output=True,
            text=True,
        )
        assert bad.returncode == 1 and bad.stderr.strip().startswith("ganaug: error: experiment mode augment: unknown")
        assert len(bad.stderr.strip().splitlines()) == 1
        assert json.loads((pipeline / "logs/stage-times.jsonl").read_text().splitlines()[-1]).get("warm")


def test_push_delete_pull_restores_identical_bytes(pipeline):
    outputs = [
        "data/images",
        "data/raw/folder",
        "data/prepared",
        "models/scorer",
        "models/gan",
        "data/synthetic/pool",
        "data/synthetic/projection",
        "data/scores",
        "data/rl",
        "data/selected",
        "models/rl_policy",
        "models/classifiers",
    ]  # the DVC outputs, the user's images included

    def files(o):  # the data files (data/selected also holds DVC's git-tracked .gitignore files)
        return [p for p in (pipeline / o).rglob("*") if p.is_file() and p.name != ".gitignore"]

    before = {str(p.relative_to(pipeline)): p.read_bytes() for o in outputs for p in files(o)}
    dvc(pipeline, "push")  # to the fixture's default remote, a local folder
    shutil.rmtree(pipeline / ".dvc" / "cache")
    for o in outputs:
        shutil.rmtree(pipeline / o)
    dvc(pipeline, "pull")
    after = {str(p.relative_to(pipeline)): p.read_bytes() for o in outputs for p in files(o)}
    assert after.keys() == before.keys() and all(after[k] == before[k] for k in before)
    assert "up to date" in dvc(pipeline, "status")


def test_trace_names_a_runs_code_data_and_params_and_what_the_workspace_lacks(pipeline):
    """`python -m ganaug.trace`: a run of the workspace traces to it exactly; a DVC experiment's run with another
    selection seed traces to its own selection and param, which the workspace does not hold, and how to restore them."""
    trace = [str(BIN / "python"), "-m", "ganaug.trace"]
    out = sh(pipeline, *trace, "reports/runs/augment/random-1-s0")  # exit status 0: the workspace holds it
    commit = sh(pipeline, "git", "rev-list", "-1", "HEAD~1").strip()
    lock = yaml.safe_load((pipeline / "dvc.lock").read_text())
    selection = next(o["md5"] for o in lock["stages"]["augment@random-1-0"]["outs"] if o["path"].endswith(".parquet"))
    assert "stage augment@random-1-0" in out and f"git commit {commit}" in out and selection in out
    assert "holds exactly this run's inputs and params" in out

    dvc(pipeline, "exp", "run", "--temp", "-n", "traced", "-S", "select.seed=7", "augment@random-1-0")
    client = mlflow.MlflowClient(f"sqlite:///{pipeline / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(TINY["mlflow"]["experiment"])
    [run] = client.search_runs([experiment.experiment_id], "tags.`dvc.exp_name` = 'traced'")
    proc = subprocess.run(
        [*trace, run.info.run_id],
        cwd=pipeline,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # something differs
    assert "DVC exp   traced" in proc.stdout and "select.seed: 7 -> 0" in proc.stdout
    assert "(2 differ: data/selected/augment/random-1-s0.parquet, select.seed)" in proc.stdout
    assert "dvc exp apply traced" in proc.stdout and "dvc checkout" in proc.stdout


SWEEP = ["experiments.samplers=[cl-sam]", "experiments.replace=[]", "experiments.counts=[]", "experiments.own=[]"]


@pytest.mark.slow
def test_low_data_sweep_trains_every_model_of_a_size_on_that_size_only(pipeline, tmp_path):
    """The sweep's 10/class experiment: scorer and GAN learned from exactly the 10/class ids, every row
    of that size trained the full size's steps, its MLflow runs landed in the project's store."""
    import dvc.api as dvc_api  # not `dvc`: that name is the CLI helper
    import pandas as pd

    from ganaug.data.prepare import prepare
    from ganaug.data.store import ids_digest, load_split
    from ganaug.sweeps.common import experiment_name
    from ganaug.sweeps.lowdata import size_overrides

    out = sh(
        pipeline,
        str(BIN / "python"),
        "-m",
        "ganaug.sweep",
        "lowdata",
        "--per-class",
        "10",
        *(a for o in SWEEP for a in ("-S", o)),
    )
    assert "Low-data sweep" in out
    small, full = (
        experiment_name(10, SWEEP, "lowdata"),
        experiment_name(PIPELINE["data"]["per_class"], SWEEP, "lowdata"),
    )

    # the ids 10/class prepare keeps: computed here, independently of the experiment
    sets = dict(s.split("=") for s in size_overrides(params_with(PIPELINE), 10, [PIPELINE["data"]["per_class"]] * 10))
    small_data = {**PIPELINE["data"], "per_class": 10, "val_per_class": int(sets["data.val_per_class"])}
    expected = prepare(
        pipeline / "data/raw/folder", tmp_path / "prepared", params_with({**PIPELINE, "data": small_data}).data
    )
    assert set(expected["counts"]["train"].values()) == {10}
    ids10 = ids_digest(load_split(tmp_path / "prepared/train.npz").ids)
    with dvc_api.open("reports/metrics/real-only.json", repo=str(pipeline), rev=small) as f:
        assert json.load(f)["train_ids_md5"] == ids10
    with dvc_api.open("reports/metrics/gan.json", repo=str(pipeline), rev=small) as f:
        assert json.load(f)["train_ids_md5"] == ids10
    with dvc_api.open("reports/metrics/gan.json", repo=str(pipeline), rev=full) as f:
        assert json.load(f)["train_ids_md5"] != ids10  # the full size learned from its 30/class

    table = pd.read_csv(pipeline / "reports/sweep/lowdata.csv")
    assert sorted(table["per_class"].unique()) == [10, PIPELINE["data"]["per_class"]]
    assert table["steps"].nunique() == 1  # tiny params: 300 // 32 = 3 x (100 // 32), so exactly equal steps
    assert (table["n"] == len(TINY["experiments"]["seeds"])).all() and table["ci_low"].notna().all()
    assert_figure(pipeline / "reports/sweep/low_data.png")

    client = mlflow.MlflowClient(f"sqlite:///{pipeline / 'mlflow.db'}")  # the project's store, not DVC's temporary copy
    experiment = client.get_experiment_by_name(TINY["mlflow"]["experiment"])
    runs = client.search_runs([experiment.experiment_id], f"tags.`dvc.exp_name` = '{small}'")
    stages = {r.data.tags["dvc.stage"] for r in runs}
    assert {"train_scorer", "train_gan", "baseline@real-0-0", "augment@cl-sam-1-1"} <= stages


@pytest.mark.slow
def test_pool_replicates_retrain_the_gan_and_report_over_pools(pipeline):
    """Pool seed 1 is a new GAN and pool (seed 0 is the pipeline as it is); the report counts pools."""
    import dvc.api as dvc_api
    import pandas as pd

    from ganaug.sweeps.pools import pool_name

    sh(
        pipeline,
        str(BIN / "python"),
        "-m",
        "ganaug.sweep",
        "pools",
        "--pool-seeds",
        "0",
        "1",
        *(a for o in SWEEP for a in ("-S", o)),
    )
    fids = []
    for k in (0, 1):
        with dvc_api.open("reports/metrics/gan.json", repo=str(pipeline), rev=pool_name(k, SWEEP)) as f:
            fids.append(json.load(f)["fid"])
    assert fids[0] != fids[1]  # two different GANs
    table = pd.read_csv(pipeline / "reports/sweep/pools.csv")
    assert table["row"].tolist() == ["cl-sam 1x"] and (table["pools"] == 2).all()
    assert table["seeds_per_pool"].iloc[0] == len(TINY["experiments"]["seeds"]) and table["ci_low"].notna().all()


@pytest.mark.slow
def test_queued_experiments_on_two_workers_are_recorded_and_log_every_training_run_to_the_projects_store(
    pipeline, monkeypatch
):
    """`dvc exp run --queue` twice, `dvc queue start -j 2`: both succeed, with no lock error; `dvc exp show`
    lists both with their params; every training stage of both has its run in the project's mlflow.db (not in
    DVC's temporary copies), nested under one parent run per DVC experiment."""
    import copy
    import time

    from ganaug.experiment.plan import planned_runs

    cheap = {"samplers": ["random"], "replace": [], "counts": [], "own": [], "baselines": ["real"], "epochs": 1}
    sets = [
        a
        for key, value in cheap.items()
        for a in (
            "-S",
            f"experiments.{key}=[{','.join(map(str, value))}]"
            if isinstance(value, list)
            else f"experiments.{key}={value}",
        )
    ]
    names = {"queued-a": 2, "queued-b": 3}  # seeds no other test used: these runs are new
    for name, seed in names.items():
        dvc(pipeline, "exp", "run", "--queue", "-n", name, *sets, "-S", f"experiments.seeds=[{seed}]")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the workers inherit it: 2 workers x 1 thread on CI's 2 cores (README)
    # its workers outlive the command: their output to a file, so that the call returns when the command does
    sh(pipeline, str(BIN / "dvc"), "queue", "start", "-j", "2", log=pipeline / ".dvc/tmp/queue-start.log")
    deadline = time.monotonic() + 900
    while "Queued" in (status := dvc(pipeline, "queue", "status")) or "Running" in status:
        assert time.monotonic() < deadline, status
        time.sleep(3)
    dvc(pipeline, "queue", "stop")  # idle workers exit now, not after their idle timeout
    for name in names:
        assert f"{name}" in status and status.split(name)[1].split("\n")[0].strip().endswith("Success"), status
        log = dvc(pipeline, "queue", "logs", name)
        assert "database is locked" not in log and "Running stage 'augment@random-1-" in log
    shown = json.loads(dvc(pipeline, "exp", "show", "--json"))
    recorded = {
        rev["name"]: rev["data"]["params"]["params.yaml"]["data"]["experiments"]["seeds"]
        for entry in shown
        for exp in (entry.get("experiments") or [])
        for rev in (exp.get("revs") or [])
        if rev.get("name") in names
    }
    assert recorded == {name: [seed] for name, seed in names.items()}  # each experiment kept, with its params

    client = mlflow.MlflowClient(f"sqlite:///{pipeline / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(TINY["mlflow"]["experiment"])
    for name, seed in names.items():
        params = copy.deepcopy(PIPELINE)
        params["experiments"].update(cheap, seeds=[seed])
        expected = {spec.dvc_stage for spec in planned_runs(params_with(params))}
        assert expected == {f"baseline@real-0-{seed}", f"augment@random-1-{seed}"}
        runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`dvc.exp_name` = '{name}'")
        assert sorted(r.data.tags["dvc.stage"] for r in runs) == sorted(expected)  # each once, all there
        assert all(r.info.status == "FINISHED" and "test_accuracy" in r.data.metrics for r in runs)
        [parent] = {r.data.tags["mlflow.parentRunId"] for r in runs}
        assert client.get_run(parent).info.run_name == name
        for run in runs:  # artifacts in the project's mlruns/, which outlives DVC's temporary copy
            assert Path(run.info.artifact_uri.removeprefix("file://")).is_relative_to(pipeline)
            assert "report/metrics.json" in [f.path for f in client.list_artifacts(run.info.run_id, "report")]
