"""From a number back to its exact inputs: a training run's code, data and params, and whether this workspace
holds them.

    python -m ganaug.trace <mlflow-run-id>
    python -m ganaug.trace reports/runs/augment/cl-sam-1-s0        # a run's report folder (or its metrics.json)

Prints the run's git commit, its DVC experiment, the md5 DVC gives each input it read (real set, pool,
selection), each next to what the workspace holds now, the params that differ from params.yaml, and the
commands that restore those inputs. Exit status 0 when the workspace holds exactly the run's inputs and
params, 1 when something differs.

A report folder whose run is in no MLflow store here (a colleague's clone: git clone + dvc pull) is traced
from the run's own record: the input md5s its metrics.json holds, its stage's params in dvc.lock, and the git
commit that recorded the file.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ganaug.errors import GanaugError


@dataclass
class Trace:
    run_id: str
    stage: str
    commit: str
    dirty: str
    exp_name: str | None
    inputs: dict[str, str]  # path -> the md5 DVC gives it, as the run read it
    params: dict[str, str]  # every param, as MLflow logged it
    metrics: dict[str, float] = field(default_factory=dict)
    elsewhere: str | None = None  # traced from the run's own record: the store that has no MLflow run of it


def from_run(run) -> Trace:
    tags = run.data.tags
    inputs = {
        k.removeprefix("input.").removesuffix(".md5"): v
        for k, v in tags.items()
        if k.startswith("input.") and k.endswith(".md5")
    }
    return Trace(
        run.info.run_id,
        tags.get("dvc.stage", "?"),
        tags.get("git.commit", "none"),
        tags.get("git.dirty", "unknown"),
        tags.get("dvc.exp_name"),
        inputs,
        dict(run.data.params),
        dict(run.data.metrics),
    )


def has_store(uri: str) -> bool:
    """Whether ``uri`` can hold runs; a SQLite store that is not there is not opened (that would create it)."""
    return not uri.startswith("sqlite:///") or Path(uri.removeprefix("sqlite:///")).is_file()


def find_trace(target: str, uri: str, experiment: str, root: Path) -> Trace:
    """The trace of ``target``: an MLflow run id, or a run's report folder / metrics.json, traced to its MLflow
    run (the latest run of its stage that wrote exactly this file), else to the run's own record."""
    path = Path(target)
    if path.is_dir():
        path = path / "metrics.json"
    if not path.is_file():
        return from_run(run_by_id(target, uri))
    from ganaug.experiment.plan import RunSpec

    try:
        metrics = json.loads(path.read_text())
        stage = RunSpec(metrics["mode"], metrics["method"], metrics["amount"], int(metrics["seed"])).dvc_stage
        metrics["inputs"] = dict(metrics["inputs"])
    except (ValueError, KeyError, TypeError):
        raise GanaugError(
            f"{path}: not a training run's metrics.json (expected JSON with mode, method, amount, seed, inputs)"
        ) from None
    run = find_run(path, metrics, stage, uri, experiment) if has_store(uri) else None
    return from_run(run) if run else from_record(path, metrics, stage, root, uri)


def run_by_id(run_id: str, uri: str):
    """The MLflow run ``run_id`` of the store at ``uri``."""
    if has_store(uri):
        import mlflow
        from mlflow.exceptions import MlflowException

        try:
            return mlflow.MlflowClient(uri).get_run(run_id)
        except MlflowException:
            pass
    raise GanaugError(
        f"{run_id}: neither a run's report folder (reports/runs/<mode>/<run>) nor an MLflow run id in {uri}"
    )


def find_run(path: Path, metrics: dict, stage: str, uri: str, experiment: str):
    """The latest MLflow run of ``stage`` that read exactly the inputs ``metrics`` records and wrote this
    file; None when the store has none."""
    import mlflow

    from ganaug.tracking import quoted

    client = mlflow.MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    runs = (
        client.search_runs(
            [found.experiment_id],
            filter_string=f"tags.`dvc.stage` = {quoted(stage)}",
            order_by=["attributes.start_time DESC"],
        )
        if found
        else []
    )
    for run in runs:  # several runs may read the same inputs (another epochs, say): the one that wrote this file
        if (
            all(run.data.tags.get(f"input.{name}.md5") == md5 for name, md5 in metrics["inputs"].items())
            and logged_report(client, run.info.run_id) == path.read_bytes()
        ):
            return run
    return None


def from_record(path: Path, metrics: dict, stage: str, root: Path, uri: str) -> Trace:
    """A trace from the files a run leaves in git: the input md5s of its metrics.json, the params dvc.lock
    records for its stage (when dvc.lock records this very file) and the commit that recorded the file."""
    import yaml

    from ganaug.digests import dvc_md5

    lock = yaml.safe_load((root / "dvc.lock").read_text()) if (root / "dvc.lock").is_file() else None
    entry = ((lock.get("stages") or {}).get(stage) or {}) if isinstance(lock, dict) else {}
    name = path.resolve().relative_to(root).as_posix() if path.resolve().is_relative_to(root) else None
    ours = any(o.get("path") == name and o.get("md5") == dvc_md5(path) for o in entry.get("outs") or [])
    params = record_params((entry.get("params") or {}).get("params.yaml") or {}, root) if ours else {}
    return Trace(
        str(path.parent),
        stage,
        record_commit(path, root),
        "unknown",
        None,
        dict(metrics["inputs"]),
        params,
        {k: metrics[k] for k in ("test_accuracy",) if k in metrics},
        elsewhere=uri,
    )


def record_params(locked: dict, root: Path) -> dict[str, str]:
    """The params dvc.lock records for a stage, as MLflow would log them: read through params.yaml's schema
    (``1`` for a float param reads ``1.0``), dotted keys, strings; only the keys the lock holds."""
    from ganaug.params import flatten, load_params

    flat: dict[str, object] = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            flat[prefix] = value

    walk("", locked)
    try:  # the run's values laid over this workspace's params.yaml, which holds the rest
        parsed = flatten(load_params(root / "params.yaml", flat))
    except (GanaugError, OSError):  # another schema: as the lock has them
        return {k: str(v) for k, v in flat.items()}
    return {k: str(v) for k, v in parsed.items() if any(k == key or k.startswith(key + ".") for key in flat)}


def record_commit(path: Path, root: Path) -> str:
    """The git commit that last recorded ``path``; 'none' when the file differs from it or git does not track it."""
    import subprocess

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args, "--", str(path.resolve())], cwd=root, capture_output=True, text=True)

    try:
        commit = git("log", "-1", "--format=%H").stdout.strip()
        changed = git("status", "--porcelain").stdout.strip()
    except FileNotFoundError:  # no git here
        return "none"
    return commit if commit and not changed else "none"


def logged_report(client, run_id: str) -> bytes | None:
    """The bytes of the metrics.json a training run logged (artifact report/metrics.json), or None if it has none."""
    import tempfile

    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory() as tmp:
        try:
            return Path(client.download_artifacts(run_id, "report/metrics.json", tmp)).read_bytes()
        except (MlflowException, FileNotFoundError):  # a run that failed before it logged its report
            return None


def workspace_params() -> dict[str, str]:
    from ganaug.params import flatten, load_params

    return {k: str(v) for k, v in flatten(load_params()).items()}  # as MLflow stores them: strings


def code_differs(commit: str, root: Path) -> bool | None:
    """Whether the workspace's code (src/, dvc.yaml) differs from the run's commit; None when unknown."""
    import subprocess

    if commit in ("", "none", "?"):
        return None
    proc = subprocess.run(["git", "diff", "--quiet", commit, "--", "src", "dvc.yaml"], cwd=root, capture_output=True)
    return None if proc.returncode not in (0, 1) else proc.returncode == 1


def compare(trace: Trace, root: Path | None = None) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """(inputs, params): (name, the run's, the workspace's); a missing input is 'missing', a param one side lacks
    'absent'. Params are only those that differ."""
    from ganaug.digests import dvc_md5
    from ganaug.tracking import project_root

    root = root or project_root()

    inputs = []
    for name, md5 in sorted(trace.inputs.items()):
        here = dvc_md5(root / name) if (root / name).exists() else "missing"
        inputs.append((name, md5, here))
    current = workspace_params()
    # a record holds only its stage's params (dvc.lock); MLflow logged every one
    keys = sorted(trace.params) if trace.elsewhere else sorted(set(trace.params) | set(current))
    params = [
        (k, trace.params.get(k, "absent"), current.get(k, "absent"))
        for k in keys
        if trace.params.get(k, "absent") != current.get(k, "absent")
    ]
    return inputs, params


def report(trace: Trace, inputs, params, code_changed: bool | None = None) -> tuple[str, bool]:
    same = all(run == here for _, run, here in inputs) and not params and not code_changed
    code_note = {
        True: "  DIFFERS from this workspace's src/ or dvc.yaml",
        False: "  same code as this workspace",
        None: "  (not comparable with this workspace)",
    }[code_changed]
    exp = trace.exp_name or ("(unknown: only MLflow records it)" if trace.elsewhere else "(none: a plain dvc repro)")
    store = f"the run lives on another store (not found in {trace.elsewhere}); traced from its "
    unchecked = trace.elsewhere is not None and not trace.params  # dvc.lock does not record this run's params
    lines = [
        f"run {trace.run_id}  stage {trace.stage}"
        + (f"  test_accuracy {trace.metrics['test_accuracy']:.4f}" if "test_accuracy" in trace.metrics else ""),
        *([f"  MLflow    {store}metrics.json, dvc.lock and git"] if trace.elsewhere else []),
        f"  code      git commit {trace.commit}{code_note}"
        + ("  (the run had uncommitted changes in src/ or dvc.yaml)" if trace.dirty == "true" else ""),
        f"  DVC exp   {exp}",
        "  inputs    (md5 as DVC records it: the run's / this workspace's)",
    ]
    width = max((len(name) for name, _, _ in inputs), default=0)
    lines += [f"    {name:<{width}}  {run}  {here if here != run else 'same'}" for name, run, here in inputs]
    if unchecked:
        lines.append("  params    not compared: dvc.lock does not record this metrics.json")
    if params:
        lines.append("  params that differ from params.yaml (the run's -> this workspace's)")
        lines += [f"    {k}: {run} -> {here}" for k, run, here in params]
    if same:
        lines.append(f"  this workspace holds exactly this run's inputs{'' if unchecked else ' and params'}")
    else:
        differ = (
            ["code"] * bool(code_changed)
            + [name for name, run, here in inputs if run != here]
            + [k for k, _, _ in params]
        )
        if trace.exp_name:
            where = f"dvc exp apply {trace.exp_name}"
        elif trace.commit in ("", "none", "?"):  # no commit recorded this run: git's history may name one
            where = f"git log -- {trace.run_id}   # no known commit recorded this run: check out the one that did"
        else:
            where = f"git checkout {trace.commit}"
        lines += [
            f"  this workspace does NOT hold this run's inputs ({len(differ)} differ: {', '.join(differ)}); "
            "to restore them:",
            f"    {where}",
            "    dvc checkout        # from the local cache; `dvc pull` instead when the cache lacks them",
        ]
    return "\n".join(lines), same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="an MLflow run id, or a run's report folder / metrics.json")
    args = parser.parse_args(argv)

    from ganaug.params import load_params
    from ganaug.tracking import project_root, tracking_uri

    root = project_root()
    trace = find_trace(args.run, tracking_uri(root), load_params().mlflow.experiment, root)
    text, same = report(trace, *compare(trace, root), code_changed=code_differs(trace.commit, root))
    print(text)
    unchecked = trace.elsewhere is not None and not trace.params  # its params could not be compared
    return 0 if same and not unchecked else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except GanaugError as error:
        print(f"ganaug: error: {error}", file=sys.stderr)
        sys.exit(1)
