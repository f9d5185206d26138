"""A real ganaug project in a temporary folder for the integration tests: a copy of the code and dvc.yaml, git and
DVC initialised, tiny params; and the user's image folder (scikit-learn's digits as PNG class folders)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from tests.conftest import params_with

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# a class name MLflow refuses as a metric key and that is not a portable file name
ODD_CLASS = "7 (50% off)"
DIGIT_CLASSES = ["0", "1", "2", "3", "4", "5", "6", ODD_CLASS, "8", "9"]


def sh(cwd: Path, *args: str, check: bool = True, log: Path | None = None) -> str:
    """Run a command in ``cwd`` with the venv's tools first on PATH and the project's own mlflow.db. With ``log``
    its output goes to that file instead of a pipe: for a command that leaves daemons behind (`dvc queue start`),
    which would hold a pipe open, and the call with it, until they exit."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    # no input: a child that asks for some (a password, a confirmation) gets end-of-file instead of waiting
    if log is not None:
        with log.open("w") as out:
            proc = subprocess.run(
                args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        output = log.read_text()
        if check:
            assert proc.returncode == 0, f"{' '.join(args)} failed:\n{output[-3000:]}"
        return output
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if check:
        assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def dvc(cwd: Path, *args: str) -> str:
    return sh(cwd, str(BIN / "dvc"), *args)


def write_digit_folder(folder: Path, per_class: int, classes: list[str] = DIGIT_CLASSES) -> None:
    """scikit-learn's 8 x 8 digits as ``folder/<class>/<i>.png``, the first ``per_class`` of each class."""
    from sklearn.datasets import load_digits

    d = load_digits()
    for c, name in enumerate(classes):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i, idx in enumerate(np.flatnonzero(d.target == c)[:per_class]):
            Image.fromarray(np.rint(d.images[idx] * 255 / 16).astype(np.uint8), "L").save(
                folder / name / f"{i:03d}.png"
            )


def new_project(root: Path, params: dict) -> Path:
    """The project's code and pipeline in ``root`` with ``params`` (validated), committed in a new git + DVC repo."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml", ".dvcignore", ".gitignore", "prompts.yaml"):  # prompts.yaml: generate's and score's dep
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(ROOT / "data/no-images", root / "data/no-images")  # the default data.root, a fetch dependency
    shutil.copytree(ROOT / "weights/none", root / "weights/none")  # the default gan.pretrained / clip.path, deps too
    (root / "params.yaml").write_text(yaml.safe_dump(params_with(params).model_dump(), sort_keys=False))
    sh(root, "git", "init", "-q")
    sh(root, "git", "config", "user.email", "tests@ganaug")
    sh(root, "git", "config", "user.name", "ganaug tests")
    dvc(root, "init", "-q")
    dvc(root, "config", "core.autostage", "true")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "project")
    return root


def commit_all(root: Path, message: str) -> None:
    """What a user commits after `dvc repro`: dvc.lock and the small reports DVC leaves to git."""
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", message)


def restore(root: Path) -> None:
    """The workspace back to its last commit, code, params and DVC outputs alike."""
    sh(root, "git", "reset", "-q", "--hard", "HEAD")  # the index too: DVC's autostage may have staged changes
    dvc(root, "checkout", "--force")
