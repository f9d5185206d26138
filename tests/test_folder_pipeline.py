"""A user's image folder through DVC: fetch mirrors it, and an edit in the folder (changed, deleted,
moved images) makes `dvc repro` re-run fetch and prepare without -f; the prepared splits follow."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from ganaug.data.store import load_split
from ganaug.params import parse_params
from tests.conftest import TINY
from tests.test_pipeline import ROOT, dvc, sh

pytestmark = pytest.mark.slow


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
    root = tmp_path / "project"
    root.mkdir()
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    data = {"name": "folder", "root": str(user), "image_size": 16, "per_class": "all", "val_per_class": 0.1, "test_per_class": 0.2}
    (root / "params.yaml").write_text(yaml.safe_dump(parse_params({**TINY, "data": data}).model_dump(), sort_keys=False))
    sh(root, "git", "init", "-q")
    sh(root, "git", "config", "user.email", "tests@ganaug")
    sh(root, "git", "config", "user.name", "ganaug tests")
    dvc(root, "init", "-q")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "folder project")
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
    assert moved not in every and deleted not in every and every["one/from-zero.png"] == every["one/00.png"]  # one label, the new one
    which = next(s for s, ids in after.items() if changed in ids)
    image = load_split(project / "data/prepared" / f"{which}.npz")
    assert image.images[list(image.ids).index(changed)].min() == 255  # the new content, not the old
    raw = sorted(str(p.relative_to(project / "data/raw/folder")) for p in (project / "data/raw/folder").rglob("*.png"))
    assert raw == sorted(str(p.relative_to(user)) for p in user.rglob("*.png"))  # an exact mirror
