"""The real pipeline: `dvc repro` on digits with tiny params in a fresh git + DVC repository,
then a no-op repro, a DVC experiment, and a push/pull round trip through a local remote."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml

from ganaug.params import parse_params
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def sh(cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}  # the project's own mlflow.db
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def dvc(cwd: Path, *args: str) -> str:
    return sh(cwd, str(BIN / "dvc"), *args)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the project, tiny params, after one real `dvc repro`."""
    root = tmp_path_factory.mktemp("project")
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (root / "data/images").mkdir(parents=True)  # the default data.root, a dependency of fetch for every source
    shutil.copy(ROOT / "data/images/README.md", root / "data/images/README.md")
    (root / "params.yaml").write_text(yaml.safe_dump(parse_params(TINY).model_dump(), sort_keys=False))
    sh(root, "git", "init", "-q")
    sh(root, "git", "config", "user.email", "tests@ganaug")
    sh(root, "git", "config", "user.name", "ganaug tests")
    dvc(root, "init", "-q")
    dvc(root, "config", "core.autostage", "true")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "tiny project")
    dvc(root, "repro")
    sh(root, "git", "commit", "-qam", "repro")
    return root


def test_repro_writes_parseable_outputs_above_chance(project):
    for path in ("data/raw/digits/digits.csv.gz", "data/prepared/train.npz", "data/prepared/classes.json",
                 "models/scorer/model.safetensors", "models/scorer/config.json",
                 "reports/scorer/summary.csv", "reports/scorer/confusion.png"):
        assert (project / path).is_file(), path
    metrics = json.loads((project / "reports/metrics/real-only.json").read_text())
    per_class = metrics["per_class_accuracy"]
    assert len(per_class) == 10 and metrics["test_accuracy"] > 0.6  # chance: 0.1
    assert sum(a > 0.3 for a in per_class.values()) >= 8
    summary = (project / "reports/scorer/summary.csv").read_text().splitlines()
    assert summary[0].startswith("epoch,train_loss,train_acc,val_loss,val_acc") and len(summary) == 1 + TINY["train"]["epochs"]
    assert "real-only.json" in dvc(project, "metrics", "show")


def test_mlflow_run_carries_stage_commit_and_the_dvc_hash_of_its_data(project):
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    prepared_md5 = next(d["md5"] for d in lock["stages"]["train_scorer"]["deps"] if d["path"] == "data/prepared")
    commit = sh(project, "git", "rev-list", "-1", "HEAD~1").strip()  # the commit the run was made from
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=[TINY["mlflow"]["experiment"]], output_format="list")
    seeds = TINY["experiments"]["seeds"]
    assert sorted(r.data.tags["dvc.stage"] for r in runs) == sorted([
        "train_scorer", "train_gan", "rl_policy", *(f"baseline@{b}-0-{k}" for b in TINY["experiments"]["baselines"] for k in seeds),
        *(f"train@{s}-1-{k}" for s in TINY["experiments"]["samplers"] for k in seeds),
        *(f"replace@1.0-{k}" for k in seeds), *(f"count@30-{k}" for k in seeds),
        *(f"own@rl-{k}" for k in seeds)])  # = the dvc.yaml stage names
    # the runs the report reads are exactly the experiment stages dvc.yaml defines
    from ganaug.experiment import planned_runs

    listed = dvc(project, "stage", "list", "--name-only").split()
    experiment_stages = [s for s in listed if s.split("@")[0] in ("baseline", "train", "replace", "count", "own")]
    assert sorted(spec.dvc_stage for spec in planned_runs(parse_params(TINY))) == sorted(experiment_stages)
    [run] = [r for r in runs if r.data.tags["dvc.stage"] == "train_scorer"]
    assert run.data.tags["dvc.stage"] == "train_scorer" and run.data.tags["git.commit"] == commit
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
    [aug] = [r for r in runs if r.data.tags["dvc.stage"] == "train@cl-sam-1-0"]
    locked = {o["path"]: o["md5"] for stage in ("train@cl-sam-1-0", "generate") for o in lock["stages"][stage]["outs"]}
    locked.update({d["path"]: d["md5"] for d in lock["stages"]["train@cl-sam-1-0"]["deps"]})
    for path in ("data/selected/augment/cl-sam-1-s0.parquet", "data/synthetic/pool", "data/prepared"):
        assert aug.data.tags[f"input.{path}.md5"] == locked[path], path
    assert (aug.data.tags["sampler"], aug.data.tags["ratio"], aug.data.tags["seed"], aug.data.tags["mode"]) == ("cl-sam", "1", "0", "augment")


def test_gan_pool_and_projection_outputs(project):
    from ganaug.gan.export import load_gan
    from ganaug.gan.pool import open_pool

    gan = json.loads((project / "reports/metrics/gan.json").read_text())
    assert gan["steps"] == TINY["gan"]["steps"] and gan["best_step"] in (10, 20) and gan["fid"] > 0
    G, D, config = load_gan(project / "models/gan")
    assert config["best"]["step"] == gan["best_step"]
    pool = open_pool(project / "data/synthetic/pool")
    assert len(pool) == 2 * 300 and pool.images.shape[1:] == (16, 16, 1) and np.bincount(pool.labels).tolist() == [60] * 10
    assert pool.meta["generator_md5"] == hashlib.md5((project / "models/gan/generator.safetensors").read_bytes()).hexdigest()
    projection = open_pool(project / "data/synthetic/projection")
    assert len(projection) == 10 * 2 * (1 + 2)  # 2 per class projected, reconstruction + 2 variants each
    assert np.load(project / "data/synthetic/projection/recon_error.npy").shape == (len(projection),)
    for png in ("reports/gan/samples.png", "reports/projection/grid.png"):
        assert (project / png).stat().st_size > 1000


def test_scores_selections_runs_and_report(project):
    import pandas as pd

    pool = pd.read_parquet(project / "data/scores/pool.parquet")
    assert len(pool) == 600 and pool["id"].tolist() == list(range(600))
    assert np.load(project / "data/scores/pool_features.npy", mmap_mode="r").shape[0] == 600
    assert len(pd.read_parquet(project / "data/scores/projection.parquet")) == 60
    for sampler in TINY["experiments"]["samplers"]:
        chosen = pd.read_parquet(project / f"data/selected/augment/{sampler}-1-s0.parquet")
        assert np.bincount(chosen["label"]).tolist() == [30] * 10 and chosen["id"].is_unique, sampler
    random_draws = [set(pd.read_parquet(project / f"data/selected/augment/random-1-s{k}.parquet")["id"]) for k in (0, 1)]
    assert random_draws[0] != random_draws[1]  # a new draw per seed
    # the scorer and the GAN learned from exactly the prepared training images (recorded ids)
    from ganaug.data.store import ids_digest, load_split

    train_ids = ids_digest(load_split(project / "data/prepared/train.npz").ids)
    assert json.loads((project / "reports/metrics/real-only.json").read_text())["train_ids_md5"] == train_ids
    assert json.loads((project / "reports/metrics/gan.json").read_text())["train_ids_md5"] == train_ids
    rl = json.loads((project / "reports/metrics/rl.json").read_text())
    assert rl["episodes"] == 3 and 0 <= rl["kept"] <= 600 and set(rl["confidence"]) == {"kept", "dropped", "spearman_with_keep"}
    keep = pd.read_parquet(project / "data/rl/keep.parquet")
    own = json.loads((project / "reports/runs/own/rl-own-s0/metrics.json").read_text())
    assert own["n_synthetic"] == rl["kept"] == int((keep["keep_prob"] > 0.5).sum())  # real + all the agent keeps
    replaced = json.loads((project / "reports/runs/replace/random-1.0-s0/metrics.json").read_text())
    assert replaced["n_real"] == 0 and replaced["n_synthetic"] == 300  # replace 100 %: synthetic only (CAS)
    table = pd.read_csv(project / "reports/summary.csv")
    assert set(table["row"]) == {"0x real", "0x real + rotated copies, no augmentation", "random 1x", "cl-sam 1x", "rl 1x",
                                 "diverse 1x", "rl own choice", "random replace 100%", "dapper +30"}
    assert (table["n"] == 2).all() and table["ci_low"].notna().all() and (table["ci_low"] <= table["mean"]).all()
    md = (project / "reports/summary.md").read_text()
    assert "| 0x real |" in md and "### Comparisons (paired over seeds, same optimiser steps)" in md
    comp = pd.read_csv(project / "reports/comparisons.csv")
    assert len(comp) == 8 + 3 and (comp["n"] == 2).all()  # 8 rows vs real-only, 3 samplers vs random
    assert set(comp["verdict"]) <= {"better", "worse", "no clear difference"} and (comp["p_holm"] >= comp["p"]).all()
    head = json.loads((project / "reports/metrics/summary.json").read_text())
    assert head["real_only"] == table.set_index("row").loc["0x real", "mean"].round(5)
    for png in ("accuracy_vs_ratio", "replacement", "fixed_counts", "loss_curves", "hist_confidence",
                "hist_realism", "extremes_confidence", "extremes_realism", "gradcam"):
        assert (project / f"reports/figures/{png}.png").stat().st_size > 1000, png


@pytest.mark.parametrize("notebook", ["01-explore-pool.ipynb", "02-compare-runs.ipynb"])
def test_notebooks_execute_on_the_pipeline_outputs(project, notebook, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
    nb = nbformat.read(ROOT / "notebooks" / notebook, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(project)}}).execute()
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) + str(o.get("data", {}).get("text/markdown", ""))
                     for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", []))
    assert "Error" not in text
    assert ("600 pool images" in text) if notebook.startswith("01") else ("cl-sam 1x" in text and "augment" in text)


def test_second_repro_does_nothing(project):
    out = dvc(project, "repro")
    assert "Data and pipelines are up to date." in out and "Running stage" not in out


def test_push_delete_pull_restores_identical_bytes(project, tmp_path):
    outputs = ["data/raw/digits", "data/prepared", "models/scorer", "models/gan", "data/synthetic/pool",
               "data/synthetic/projection", "data/scores", "data/rl", "data/selected", "models/rl_policy",
               "models/classifiers"]  # the DVC outputs
    def files(o):  # the data files (data/selected also holds DVC's git-tracked .gitignore files)
        return [p for p in (project / o).rglob("*") if p.is_file() and p.name != ".gitignore"]

    before = {str(p.relative_to(project)): p.read_bytes() for o in outputs for p in files(o)}
    dvc(project, "remote", "add", "-d", "-f", "storage", str(tmp_path / "remote"))
    dvc(project, "push")
    shutil.rmtree(project / ".dvc" / "cache")
    for o in outputs:
        shutil.rmtree(project / o)
    dvc(project, "pull")
    after = {str(p.relative_to(project)): p.read_bytes() for o in outputs for p in files(o)}
    assert after.keys() == before.keys() and all(after[k] == before[k] for k in before)
    assert "up to date" in dvc(project, "status")


def test_exp_run_records_an_experiment(project):
    dvc(project, "exp", "run", "-S", "experiments.epochs=1")  # re-runs the experiment stages only
    experiments = json.loads(dvc(project, "exp", "show", "--json"))
    epochs = [
        exp["data"]["params"]["params.yaml"]["data"]["experiments"]["epochs"]
        for entry in experiments
        for exp in (entry.get("experiments") or [])
        for exp in (exp.get("revs") or [])
    ]
    assert 1 in epochs


def test_low_data_sweep_trains_every_model_of_a_size_on_that_size_only(project, tmp_path):
    """The sweep's 10/class experiment: scorer and GAN learned from exactly the 10/class ids, every row
    of that size trained the full size's steps, its MLflow runs landed in the project's store."""
    import dvc.api as dvc_api  # not `dvc`: that name is this module's CLI helper
    import pandas as pd

    from ganaug.data.prepare import prepare
    from ganaug.data.store import ids_digest, load_split
    from ganaug.sweep import experiment_name, size_overrides

    sh(project, "git", "checkout", "--", ".")  # undo the workspace experiment of the test above
    dvc(project, "checkout", "--force")
    overrides = ["experiments.samplers=[cl-sam]", "experiments.replace=[]", "experiments.counts=[]", "experiments.own=[]"]
    out = sh(project, str(BIN / "python"), "-m", "ganaug.sweep", "lowdata", "--per-class", "10", *(a for o in overrides for a in ("-S", o)))
    assert "Low-data sweep" in out
    small, full = experiment_name(10, overrides), experiment_name(TINY["data"]["per_class"], overrides)

    # the ids 10/class prepare keeps: computed here, independently of the experiment
    sets = dict(s.split("=") for s in size_overrides(parse_params(TINY), 10, [TINY["data"]["per_class"]] * 10))
    small_data = {**TINY["data"], "per_class": 10, "val_per_class": int(sets["data.val_per_class"])}
    expected = prepare(project / "data/raw/digits", tmp_path / "prepared", parse_params({**TINY, "data": small_data}).data)
    assert set(expected["counts"]["train"].values()) == {10}
    ids10 = ids_digest(load_split(tmp_path / "prepared/train.npz").ids)
    with dvc_api.open("reports/metrics/real-only.json", repo=str(project), rev=small) as f:
        assert json.load(f)["train_ids_md5"] == ids10
    with dvc_api.open("reports/metrics/gan.json", repo=str(project), rev=small) as f:
        assert json.load(f)["train_ids_md5"] == ids10
    with dvc_api.open("reports/metrics/gan.json", repo=str(project), rev=full) as f:
        assert json.load(f)["train_ids_md5"] != ids10  # the full size learned from its 30/class

    table = pd.read_csv(project / "reports/sweep/lowdata.csv")
    assert sorted(table["per_class"].unique()) == [10, TINY["data"]["per_class"]]
    assert table["steps"].nunique() == 1  # tiny params: 300 // 32 = 3 x (100 // 32), so exactly equal steps
    assert (table["n"] == len(TINY["experiments"]["seeds"])).all() and table["ci_low"].notna().all()
    assert (project / "reports/sweep/low_data.png").stat().st_size > 1000

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")  # the project's store, not DVC's temporary copy
    runs = mlflow.search_runs(experiment_names=[TINY["mlflow"]["experiment"]], filter_string=f"tags.`dvc.exp_name` = '{small}'",
                              output_format="list")
    stages = {r.data.tags["dvc.stage"] for r in runs}
    assert {"train_scorer", "train_gan", "baseline@real-0-0", "train@cl-sam-1-1"} <= stages


def test_pool_replicates_retrain_the_gan_and_report_over_pools(project):
    """Pool seed 1 is a new GAN and pool (seed 0 is the pipeline as it is); the report counts pools."""
    import dvc.api as dvc_api
    import pandas as pd

    from ganaug.sweep import pool_name

    overrides = ["experiments.samplers=[cl-sam]", "experiments.replace=[]", "experiments.counts=[]", "experiments.own=[]"]
    sh(project, str(BIN / "python"), "-m", "ganaug.sweep", "pools", "--pool-seeds", "0", "1", *(a for o in overrides for a in ("-S", o)))
    fids = []
    for k in (0, 1):
        with dvc_api.open("reports/metrics/gan.json", repo=str(project), rev=pool_name(k, overrides)) as f:
            fids.append(json.load(f)["fid"])
    assert fids[0] != fids[1]  # two different GANs
    table = pd.read_csv(project / "reports/sweep/pools.csv")
    assert table["row"].tolist() == ["cl-sam 1x"] and (table["pools"] == 2).all()
    assert table["seeds_per_pool"].iloc[0] == len(TINY["experiments"]["seeds"]) and table["ci_low"].notna().all()


def test_queued_experiments_on_two_workers_log_every_training_run_to_the_projects_store(project, monkeypatch):
    """`dvc exp run --queue` twice, `dvc queue start -j 2`: both succeed, with no lock error, and every
    training stage of both has its run in the project's mlflow.db (not in DVC's temporary copies),
    nested under one parent run per DVC experiment."""
    import copy
    import time

    from ganaug.experiment import planned_runs

    sh(project, "git", "checkout", "--", ".")  # undo the workspace changes of the tests above
    dvc(project, "checkout", "--force")
    cheap = {"samplers": ["random"], "replace": [], "counts": [], "own": [], "baselines": ["real"], "epochs": 1}
    sets = [a for key, value in cheap.items() for a in ("-S", f"experiments.{key}=[{','.join(map(str, value))}]"
                                                          if isinstance(value, list) else f"experiments.{key}={value}")]
    names = {"queued-a": 2, "queued-b": 3}  # seeds no other test used: these runs are new
    for name, seed in names.items():
        dvc(project, "exp", "run", "--queue", "-n", name, *sets, "-S", f"experiments.seeds=[{seed}]")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the workers inherit it: 2 workers x 1 thread on CI's 2 cores (README)
    dvc(project, "queue", "start", "-j", "2")
    deadline = time.monotonic() + 900
    while "Queued" in (status := dvc(project, "queue", "status")) or "Running" in status:
        assert time.monotonic() < deadline, status
        time.sleep(5)
    dvc(project, "queue", "stop")  # idle workers exit now, not after their idle timeout
    for name in names:
        assert f"{name}" in status and status.split(name)[1].split("\n")[0].strip().endswith("Success"), status
        log = dvc(project, "queue", "logs", name)
        assert "database is locked" not in log and "Running stage 'train@random-1-" in log

    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(TINY["mlflow"]["experiment"])
    for name, seed in names.items():
        params = copy.deepcopy(TINY)
        params["experiments"].update(cheap, seeds=[seed])
        expected = {spec.dvc_stage for spec in planned_runs(parse_params(params))}
        assert expected == {f"baseline@real-0-{seed}", f"train@random-1-{seed}"}
        runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`dvc.exp_name` = '{name}'")
        assert sorted(r.data.tags["dvc.stage"] for r in runs) == sorted(expected)  # each once, all there
        assert all(r.info.status == "FINISHED" and "test_accuracy" in r.data.metrics for r in runs)
        [parent] = {r.data.tags["mlflow.parentRunId"] for r in runs}
        assert client.get_run(parent).info.run_name == name
        for run in runs:  # artifacts in the project's mlruns/, which outlives DVC's temporary copy
            assert Path(run.info.artifact_uri.removeprefix("file://")).is_relative_to(project)
            assert "report/metrics.json" in [f.path for f in client.list_artifacts(run.info.run_id, "report")]
