"""MLflow runs that trace every number back to its data.

Each training stage is one run with: all params flattened; per-epoch metrics; tags for the DVC
stage, the git commit (and whether the code differs from it), and the content hash of every data
input -- the same md5 DVC records in dvc.lock -- each input also logged with ``mlflow.log_input``
with that hash as its digest; artifacts (resolved config, summary.csv, figures).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import warnings
from pathlib import Path
from urllib.parse import quote

from ganaug import distributed
from ganaug.digests import dvc_md5
from ganaug.errors import GanaugError
from ganaug.params import Params, flatten

DEFAULT_DB = "mlflow.db"
# MLflow 3's UI opens an experiment on its GenAI overview unless the experiment says it trains models
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
PARENT_TAG = "dvc.experiment"  # on the parent run that groups one DVC experiment's stage runs
# a generator's weights folder (gan.pretrained) among a run's inputs: the train_gan run's, and that of every run
# whose pool came from those weights (the pool's meta records their md5)
GAN_WEIGHTS = "gan_weights"  # the input names of weights folders: tags input.gan_weights.md5, input.clip_weights.md5
CLIP_WEIGHTS = "clip_weights"


def input_tag(name: str) -> str:
    """The tag holding the md5 of a run's input ``name``."""
    return f"input.{name}.md5"


def project_root() -> Path:
    """The project's root. Under `dvc exp run --temp` or `--queue` a stage runs in a temporary copy
    of the repo that is deleted afterwards; DVC points $DVC_ROOT at the project itself."""
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


def tracking_uri(root: Path | None = None) -> str:
    """$MLFLOW_TRACKING_URI, else a SQLite store in the project root (never in DVC's temporary copy)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(root or project_root()) / DEFAULT_DB}"


def use_wal(uri: str) -> None:
    """Put a local SQLite store in write-ahead-log mode (a setting stored in the file), so that
    `dvc queue start -j N` workers writing runs at once, and `make ui` reading, do not block one
    another. MLflow itself waits up to 20 s for a lock; WAL keeps the waits short."""
    if not uri.startswith("sqlite:///") or uri == "sqlite:///:memory:":
        return
    import sqlite3

    path = Path(uri.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.execute("PRAGMA journal_mode=WAL")


def artifact_root(uri: str) -> Path | None:
    """Where a local SQLite store keeps its artifacts (mlruns/ beside its file, as an absolute path:
    a relative one cannot be a file URI); None for a server, which decides for itself."""
    return Path(uri.removeprefix("sqlite:///")).resolve().parent if uri.startswith("sqlite:///") else None


def quoted(value: str) -> str:
    """``value`` as a string literal of MLflow's search syntax (git allows either quote in a name)."""
    for quote_char in ("'", '"'):
        if quote_char not in value:
            return f"{quote_char}{value}{quote_char}"
    raise GanaugError(f"{value!r}: a name with both kinds of quote cannot be searched in MLflow; rename it")


def ensure_experiment(client, name: str, artifact_root: Path | None) -> str:
    """The id of experiment ``name``, created if missing (artifacts in ``artifact_root``/mlruns/name:
    the project's, never a temporary copy's) and marked as model training for the UI. Two queue
    workers may both find it missing; the one whose create fails reads the other's."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        location = (artifact_root / "mlruns" / quote(name, safe="")).as_uri() if artifact_root else None
        try:
            return client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)
        except MlflowException as error:
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise error
    for key, value in EXPERIMENT_KIND.items():
        if experiment.tags.get(key) != value:  # an experiment made without the kind (by hand, or by an older ganaug)
            client.set_experiment_tag(experiment.experiment_id, key, value)
    return experiment.experiment_id


def open_experiment(name: str):
    """The store (``tracking_uri()``, WAL if SQLite), a client on it and the id of experiment
    ``name``, created or marked as needed: what a tracked stage and `make ui` both start with."""
    import mlflow

    uri = tracking_uri()
    use_wal(uri)
    client = mlflow.MlflowClient(uri)
    return uri, client, ensure_experiment(client, name, artifact_root(uri))


def experiment_parent(client, experiment_id: str, exp_name: str, baseline: str) -> str:
    """The run that groups the stage runs of DVC experiment ``exp_name`` (on commit ``baseline``):
    found, or created finished; each stage run of that experiment is nested under it in the UI.
    A DVC experiment's stages run one after another, so two never create the same parent."""
    query = f"tags.`{PARENT_TAG}` = {quoted(exp_name)} and tags.`dvc.baseline_rev` = {quoted(baseline)}"
    found = client.search_runs([experiment_id], filter_string=query, max_results=1)
    if found:
        return found[0].info.run_id
    run = client.create_run(experiment_id, run_name=exp_name, tags={PARENT_TAG: exp_name, "dvc.baseline_rev": baseline})
    client.set_terminated(run.info.run_id)
    return run.info.run_id


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
def tracked_run(
    stage: str, params: Params, inputs: dict[str, Path], tags: dict[str, str] | None = None, run_name: str | None = None
):
    """One MLflow run for one DVC stage; yields the active run.

    ``inputs`` maps a name (e.g. 'data/prepared') to the path DVC tracks for it. Under torchrun only
    rank 0 has a run; the other ranks get None and log nothing."""
    if not distributed.is_main():
        yield None
        return
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    uri, client, experiment_id = open_experiment(params.mlflow.experiment)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment_id=experiment_id)
    run_tags = {"dvc.stage": stage, **git_state(), **(tags or {})}
    if distributed.world_size() > 1:
        run_tags["distributed.world_size"] = str(distributed.world_size())
    if os.environ.get("DVC_EXP_NAME"):  # set by `dvc exp run`, in the workspace, --temp and --queue alike
        run_tags["dvc.exp_name"] = os.environ["DVC_EXP_NAME"]
        baseline = os.environ.get("DVC_EXP_BASELINE_REV") or run_tags["git.commit"]
        run_tags["dvc.baseline_rev"] = baseline
        run_tags["mlflow.parentRunId"] = experiment_parent(client, experiment_id, os.environ["DVC_EXP_NAME"], baseline)
    digests = {name: dvc_md5(path) for name, path in inputs.items()}
    run_tags.update({input_tag(name): digest for name, digest in digests.items()})
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
    if not distributed.is_main():
        return
    import mlflow

    mlflow.log_metrics({k: float(v) for k, v in row.items() if k != step_key}, step=int(row[step_key]))


MAX_KEY = 250  # MLflow's longest metric key


def metric_key(prefix: str, name: str) -> str:
    """An MLflow-safe metric key for a class name. MLflow allows letters, digits, ``_ - . /`` and space, and no
    ``..``; every other character becomes ``_``, and ``/`` becomes ``-`` so a key never reads as a path."""
    safe = re.sub(r"[^\w\-. ]", "_", name.replace("/", "-")).strip() or "_"
    return f"{prefix}.{safe.replace('..', '__')}"


def per_class_keys(prefix: str, names) -> dict[str, str]:
    """MLflow-safe key -> class name, in class order; two names that clean to one key (``a%`` and ``a&``)
    keep apart by the later one's class index (then ``_<index>_<n>`` while that is taken too). Keys stay
    within MLflow's 250 characters."""
    keys: dict[str, str] = {}
    for index, name in enumerate(names):
        key = metric_key(prefix, name)[: MAX_KEY - 12]
        candidate, n = key, 0
        while candidate in keys:
            n += 1
            candidate = f"{key}_{index}" + (f"_{n}" if n > 1 else "")
        keys[candidate] = name
    return keys


def log_per_class(prefix: str, values: dict[str, float]) -> None:
    """One metric per class under its MLflow-safe key, and ``<prefix>.classes.json`` beside them: the map from
    key back to class name (``test_acc.50_ off _new_`` -> ``50% off (new)``)."""
    import mlflow

    keys = per_class_keys(prefix, list(values))
    mlflow.log_metrics({key: float(values[name]) for key, name in keys.items()})
    mlflow.log_dict(keys, f"{prefix}.classes.json")
