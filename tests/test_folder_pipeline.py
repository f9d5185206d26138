"""A user's image folder through DVC: fetch mirrors it, and an edit in the folder (changed, deleted, moved images)
makes `dvc repro` re-run fetch and prepare without -f; the prepared splits follow. A class name MLflow refuses runs
through training; a colleague's clone + `dvc pull` of the session's pipeline reproduces it exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganaug.data.store import load_split
from tests.conftest import TINY
from tests.project import ODD_CLASS, dvc, new_project, restore, sh


def prepared_ids(project: Path) -> dict[str, dict[str, int]]:
    """split -> {id: label} of data/prepared."""
    out = {}
    for split in ("train", "val", "test"):
        s = load_split(project / "data/prepared" / f"{split}.npz")
        out[split] = dict(zip(s.ids.tolist(), s.labels.tolist()))
    return out


@pytest.fixture
def folder_project(tmp_path) -> tuple[Path, Path]:
    from sklearn.datasets import load_digits

    user = tmp_path / "my images"  # a space: the path goes through dvc.yaml's templating
    d = load_digits()
    for c, name in enumerate(["zero", "one", "two"]):
        (user / name).mkdir(parents=True)
        for i, idx in enumerate(np.flatnonzero(d.target == c)[:20]):
            Image.fromarray(np.rint(d.images[idx] * 255 / 16).astype(np.uint8), "L").save(user / name / f"{i:02d}.png")
    data = {
        "name": "folder",
        "root": str(user),
        "image_size": 16,
        "per_class": "all",
        "val_per_class": 0.1,
        "test_per_class": 0.2,
    }
    root = new_project(tmp_path / "project", {**TINY, "data": data})
    return root, user


def test_an_edited_folder_re_runs_fetch_and_prepare_and_the_splits_follow(folder_project):
    project, user = folder_project
    dvc(project, "repro", "prepare")
    before = prepared_ids(project)
    assert sum(len(v) for v in before.values()) == 60
    assert {len([i for i, y in before["test"].items() if y == c]) for c in range(3)} == {4}  # 20% of each class
    assert "Data and pipelines are up to date." in dvc(project, "repro", "prepare")  # nothing changed, nothing runs

    moved, deleted, changed = "zero/03.png", "one/05.png", "two/07.png"
    (user / moved).rename(user / "one" / "from-zero.png")
    (user / deleted).unlink()
    Image.fromarray(np.full((8, 8), 255, np.uint8), "L").save(user / changed)
    out = dvc(project, "repro", "prepare")  # no -f: the folder is a dependency of fetch
    assert "Running stage 'fetch'" in out and "Running stage 'prepare'" in out
    after = prepared_ids(project)
    every = {i: y for split in after.values() for i, y in split.items()}
    assert len(every) == 59 and sum(len(v) for v in after.values()) == 59  # each image in exactly one split
    assert (
        moved not in every and deleted not in every and every["one/from-zero.png"] == every["one/00.png"]
    )  # one label, the new one
    which = next(s for s, ids in after.items() if changed in ids)
    image = load_split(project / "data/prepared" / f"{which}.npz")
    assert image.images[list(image.ids).index(changed)].min() == 255  # the new content, not the old
    raw = sorted(str(p.relative_to(project / "data/raw/folder")) for p in (project / "data/raw/folder").rglob("*.png"))
    assert raw == sorted(str(p.relative_to(user)) for p in user.rglob("*.png"))  # an exact mirror


def test_any_class_name_runs_through_training_and_reads_back_under_its_own_name(pipeline):
    """The pipeline's class "7 (50% off)": per-class accuracy under its own name in every report, and in MLflow
    under a cleaned key that the logged key -> name map turns back into it."""
    import json

    import mlflow

    scorer = json.loads((pipeline / "reports/metrics/real-only.json").read_text())
    run = json.loads((pipeline / "reports/runs/augment/random-1-s0/metrics.json").read_text())
    assert ODD_CLASS in scorer["per_class_accuracy"] and ODD_CLASS in run["per_class_accuracy"]
    client = mlflow.MlflowClient(f"sqlite:///{pipeline / 'mlflow.db'}")  # not set globally: other tests keep theirs
    experiment = client.get_experiment_by_name(TINY["mlflow"]["experiment"])
    for stage, expected in (("train_scorer", scorer), ("augment@random-1-0", run)):
        [logged] = client.search_runs(
            [experiment.experiment_id], f"tags.`dvc.stage` = '{stage}' and tags.`dvc.exp_name` IS NULL"
        )
        names = mlflow.artifacts.load_dict(f"{logged.info.artifact_uri}/test_acc.classes.json")
        per_class = {names[k]: v for k, v in logged.data.metrics.items() if k.startswith("test_acc.")}
        assert per_class == pytest.approx(expected["per_class_accuracy"], abs=1e-5), stage
        assert "test_acc.7 _50_ off_" in logged.data.metrics


def test_a_colleague_clones_pulls_and_reproduces_exactly(pipeline, tmp_path):
    """git clone + dvc pull of the pushed project: the images are back, nothing is stale, an experiment runs."""
    dvc(pipeline, "push")
    b = tmp_path / "colleague"
    sh(tmp_path, "git", "clone", "-q", str(pipeline), str(b))
    dvc(b, "pull")
    assert sorted(p.relative_to(b / "data/images") for p in (b / "data/images").rglob("*.png")) == sorted(
        p.relative_to(pipeline / "data/images") for p in (pipeline / "data/images").rglob("*.png")
    )
    assert "Data and pipelines are up to date." in dvc(b, "status")
    out = dvc(b, "repro")
    assert "Data and pipelines are up to date." in out and "Running stage" not in out
    out = dvc(b, "exp", "run", "-S", "experiments.seeds=[0,1,2]", "augment@random-1-2")  # a new seed: only its run
    assert "Running stage 'augment@random-1-2'" in out and "Running stage 'train_scorer'" not in out


def test_an_image_added_or_removed_in_one_clone_reaches_the_other(pipeline, tmp_path):
    dvc(pipeline, "push")
    b = tmp_path / "colleague"
    sh(tmp_path, "git", "clone", "-q", str(pipeline), str(b))
    dvc(b, "pull", "data/images.dvc")
    head = sh(pipeline, "git", "rev-parse", "HEAD").strip()
    try:
        Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(pipeline / "data/images/0/new.png")
        (pipeline / "data/images/1/000.png").unlink()
        dvc(pipeline, "add", "data/images")
        sh(pipeline, "git", "commit", "-qam", "one image added, one removed")
        dvc(pipeline, "push", "data/images.dvc")
        sh(b, "git", "pull", "-q")
        dvc(b, "pull", "data/images.dvc")
        assert (b / "data/images/0/new.png").is_file() and not (b / "data/images/1/000.png").exists()
        assert "fetch" in dvc(b, "status")  # the folder changed: fetch and what follows must run again
    finally:  # the shared pipeline as it was, for the other tests
        sh(pipeline, "git", "reset", "-q", "--hard", head)
        restore(pipeline)
