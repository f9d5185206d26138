"""MLflow runs that trace every number back to its data.

Each training stage is one run with: all params flattened; per-epoch metrics; tags for the DVC
stage, the git commit (and whether the code differs from it), and the content hash of every data
input -- the same md5 DVC records in dvc.lock -- each input also logged with ``mlflow.log_input``
with that hash as its digest; artifacts (resolved config, summary.csv, figures).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import warnings
from pathlib import Path

from ganaug.data.download import file_digest
from ganaug.errors import GanaugError
from ganaug.params import Params, flatten

DEFAULT_DB = "mlflow.db"


def tracking_uri(root: Path | None = None) -> str:
    """$MLFLOW_TRACKING_URI, else a SQLite store in the project root. Under `dvc exp run --temp`
    or `--queue` a stage runs in a temporary copy of the repo; DVC points $DVC_ROOT at the project,
    so those runs land in the project's store, not in a copy deleted afterwards."""
    root = root or Path(os.environ.get("DVC_ROOT") or Path.cwd())
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root.resolve() / DEFAULT_DB}"


def dvc_md5(path: Path) -> str:
    """The md5 DVC 3 records for ``path``: a file's md5, or for a folder the md5 of the sorted
    JSON list of {md5, relpath} of its files, suffixed '.dir' (as dvc_data's Tree.digest)."""
    path = Path(path)
    if path.is_file():
        return file_digest(path, "md5")
    if not path.is_dir():
        raise GanaugError(f"{path}: input not found (run the stage that produces it)")
    entries = sorted(
        ({"md5": file_digest(p, "md5"), "relpath": p.relative_to(path).as_posix()} for p in path.rglob("*") if p.is_file()),
        key=lambda e: e["relpath"],
    )
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode("utf-8")).hexdigest() + ".dir"


def git_state(root: Path | None = None) -> dict[str, str]:
    """Commit of HEAD and whether the code (src/, dvc.yaml) differs from it; 'none' outside git."""
    cwd = root or Path.cwd()

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "src", "dvc.yaml"))
    except (subprocess.CalledProcessError, FileNotFoundError):
        return {"git.commit": "none", "git.dirty": "unknown"}
    return {"git.commit": commit, "git.dirty": str(dirty).lower(), "mlflow.source.git.commit": commit}


@contextlib.contextmanager
def tracked_run(stage: str, params: Params, inputs: dict[str, Path], tags: dict[str, str] | None = None, run_name: str | None = None):
    """One MLflow run for one DVC stage; yields the active run.

    ``inputs`` maps a name (e.g. 'data/prepared') to the path DVC tracks for it."""
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_experiment(params.mlflow.experiment)
    run_tags = {"dvc.stage": stage, **git_state(), **(tags or {})}
    if os.environ.get("DVC_EXP_NAME"):
        run_tags["dvc.exp_name"] = os.environ["DVC_EXP_NAME"]
    digests = {name: dvc_md5(path) for name, path in inputs.items()}
    run_tags.update({f"input.{name}.md5": digest for name, digest in digests.items()})
    with mlflow.start_run(run_name=run_name or stage) as run:
        mlflow.log_params(flatten(params))
        mlflow.set_tags(run_tags)
        for name, path in inputs.items():
            with warnings.catch_warnings():  # "can be interpreted in multiple ways": both are local files
                warnings.simplefilter("ignore", UserWarning)
                source = resolve_dataset_source(str(Path(path).resolve()))
            mlflow.log_input(MetaDataset(source=source, name=name, digest=digests[name]), context=stage)
        yield run


def log_epoch(row: dict, step_key: str = "epoch") -> None:
    import mlflow

    mlflow.log_metrics({k: float(v) for k, v in row.items() if k != step_key}, step=int(row[step_key]))
