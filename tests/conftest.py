"""Shared fixtures and the project's params with overrides: tiny params on scikit-learn's digits (no network)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from ganaug.params import Params, load_params, overlay

PARAMS_YAML = Path(__file__).resolve().parents[1] / "params.yaml"  # the project's: every key, its value


def params_with(overrides: dict | None = None) -> Params:
    """The project's params.yaml with ``overrides`` laid over it (ganaug.params.overlay): how tests build params."""
    return load_params(PARAMS_YAML, overrides)


def write_params(folder: Path, overrides: dict | None = None) -> Path:
    """``folder``/params.yaml: the project's with ``overrides`` laid over it, not validated (so that a test can
    write a bad value for a stage to refuse)."""
    raw = overlay(yaml.safe_load(PARAMS_YAML.read_text()), overrides or {})
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


# Small enough for seconds of CPU, big enough that a real classifier clearly beats chance.
TINY = {
    "data": {"name": "digits", "image_size": 16, "per_class": 30, "val_per_class": 10, "test_per_class": 50},
    "train": {
        "epochs": 12,
        "batch_size": 32,
        "lr": 0.05,
        "augment": {"hflip": False, "crop_padding": 1, "rotate_degrees": 0},
    },
    "gan": {
        "steps": 20,
        "batch_size": 16,
        "g_width": 8,
        "d_width": 8,
        "min_width": 8,
        "ckpt_every": 10,
        "eval_every": 10,
        "eval_samples": 50,
    },
    "generate": {"pool_multiple": 2, "batch_size": 100},
    "projection": {"per_class": 2, "steps": 10, "variants": 2},
    "rl": {"episodes": 3, "real_per_class": 3, "child_steps": 10},
    "experiments": {
        "samplers": ["random", "cl-sam", "rl", "diverse"],
        "ratios": [1],
        "seeds": [0, 1],
        "baselines": ["real", "rotated-copies"],
        "replace": [1.0],
        "counts": [30],
        "count_sampler": "dapper",
        "own": ["rl"],
        "epochs": 3,
    },
    "mlflow": {"experiment": "ganaug-tests"},
}


# The integration tests' pipeline: TINY on a user's image folder (digits as PNG class folders, one class name
# MLflow refuses as a metric key). Its matrix is small (3 samplers, 1 baseline, every mode, 2 seeds): 23 stages.
PIPELINE = {
    **TINY,
    "data": {
        "name": "folder",
        "root": "data/images",
        "image_size": 16,
        "per_class": 30,
        "val_per_class": 10,
        "test_per_class": 50,
    },
    "experiments": {**TINY["experiments"], "samplers": ["random", "cl-sam", "diverse"], "baselines": ["real"]},
}


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory):
    """The project after a user's first real run, shared by the integration tests (one `dvc repro` a session):
    images in data/images (`dvc add`), a local DVC remote set, everything committed. A test that changes the
    workspace restores it (tests.project.restore) before it ends."""
    from tests.project import commit_all, dvc, new_project, write_digit_folder

    root = new_project(tmp_path_factory.mktemp("pipeline") / "project", PIPELINE)
    write_digit_folder(root / "data/images", 95)
    dvc(root, "add", "data/images")  # the README's commands for a user's own images
    dvc(root, "remote", "add", "-d", "team", str(root.parent / "remote"))
    commit_all(root, "my images")
    dvc(root, "repro")
    commit_all(root, "repro")
    return root


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the group markers
def pytest_collection_modifyitems(items):
    """Under pytest-xdist (--dist loadgroup) the tests of the shared pipeline run in one worker, in file order."""
    for item in items:
        if "pipeline" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("pipeline"))


@pytest.fixture
def tiny_params():
    return params_with(TINY)


@pytest.fixture(autouse=True)
def _no_external_tracking(monkeypatch, tmp_path):
    """Tests never write to a user's MLflow server or the project's mlflow.db."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow-tests.db'}")
    monkeypatch.setenv("GIT_PYTHON_REFRESH", "quiet")


@pytest.fixture(scope="session")
def digits16():
    """300 scikit-learn digits at 16 px, uint8 N x 16 x 16 x 1, and their labels (the GAN tests' data)."""
    from sklearn.datasets import load_digits

    from ganaug.data.prepare import resize

    d = load_digits()
    images = resize(np.rint(d.images * 255 / 16).astype(np.uint8)[..., None], 16, None)
    return images[:300], d.target[:300].astype(np.int64)


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    """A tiny CLIP trained contrastively on 1,000 scikit-learn digits (16 px) captioned with their class prompts
    (prompts.yaml: 'a photo of a 3'), saved with save_pretrained (~10 s, once a session), and the 797 digits it did
    not see: (folder, held-out images, their labels, the prompts)."""
    from types import SimpleNamespace

    from sklearn.datasets import load_digits

    from ganaug.data.prepare import resize
    from ganaug.prompts import load_prompts
    from ganaug.tiny.clip import train_tiny_clip

    d = load_digits()
    images = resize(np.rint(d.images * 255 / 16).astype(np.uint8)[..., None], 16, None)
    labels = d.target.astype(np.int64)
    prompts = load_prompts([str(c) for c in range(10)], PARAMS_YAML.parent / "prompts.yaml")
    folder = train_tiny_clip(images[:1000], labels[:1000], prompts, tmp_path_factory.mktemp("tiny-clip") / "clip")
    return SimpleNamespace(
        path=folder,
        train_images=images[:1000],
        train_labels=labels[:1000],
        images=images[1000:],
        labels=labels[1000:],
        prompts=prompts,
    )
