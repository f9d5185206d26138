"""From a number back to its exact inputs: a training run's code, data and params, and whether this workspace
holds them.

    python -m ganaug.trace <mlflow-run-id>
    python -m ganaug.trace reports/runs/augment/cl-sam-1-s0        # a run's report folder (or its metrics.json)

Prints the run's git commit, its DVC experiment, the md5 DVC gives each input it read (real set, pool,
selection), each next to what the workspace holds now, the params that differ from params.yaml, and the
commands that restore those inputs. Exit status 0 when the workspace holds exactly the run's inputs and
params, 1 when something differs.
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


def find_run(target: str, client, experiment: str):
    """The MLflow run of ``target``: a run id, or a run's report folder / metrics.json (the latest run of its
    stage that read exactly the inputs the file records)."""
    from mlflow.exceptions import MlflowException

    path = Path(target)
    if path.is_dir():
        path = path / "metrics.json"
    if not path.is_file():
        try:
            return client.get_run(target)
        except MlflowException:
            raise GanaugError(
                f"{target}: neither a run's report folder (reports/runs/<mode>/<run>) nor an MLflow run id "
                "in this project's store"
            ) from None
    from ganaug.experiment import RunSpec
    from ganaug.tracking import quoted

    metrics = json.loads(path.read_text())
    stage = RunSpec(metrics["mode"], metrics["sampler"], metrics["amount"], int(metrics["seed"])).dvc_stage
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
    raise GanaugError(f"{path}: no MLflow run of stage {stage} in {client.tracking_uri} wrote this metrics.json")


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
    keys = sorted(set(trace.params) | set(current))
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
    lines = [
        f"run {trace.run_id}  stage {trace.stage}"
        + (f"  test_accuracy {trace.metrics['test_accuracy']:.4f}" if "test_accuracy" in trace.metrics else ""),
        f"  code      git commit {trace.commit}{code_note}"
        + ("  (the run had uncommitted changes in src/ or dvc.yaml)" if trace.dirty == "true" else ""),
        f"  DVC exp   {trace.exp_name or '(none: a plain dvc repro)'}",
        "  inputs    (md5 as DVC records it: the run's / this workspace's)",
    ]
    width = max((len(name) for name, _, _ in inputs), default=0)
    lines += [f"    {name:<{width}}  {run}  {here if here != run else 'same'}" for name, run, here in inputs]
    if params:
        lines.append("  params that differ from params.yaml (the run's -> this workspace's)")
        lines += [f"    {k}: {run} -> {here}" for k, run, here in params]
    if same:
        lines.append("  this workspace holds exactly this run's inputs and params")
    else:
        differ = (
            ["code"] * bool(code_changed)
            + [name for name, run, here in inputs if run != here]
            + [k for k, _, _ in params]
        )
        where = f"dvc exp apply {trace.exp_name}" if trace.exp_name else f"git checkout {trace.commit}"
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

    import mlflow

    from ganaug.params import load_params
    from ganaug.tracking import project_root, tracking_uri

    client = mlflow.MlflowClient(tracking_uri())
    trace = from_run(find_run(args.run, client, load_params().mlflow.experiment))
    text, same = report(trace, *compare(trace), code_changed=code_differs(trace.commit, project_root()))
    print(text)
    return 0 if same else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except GanaugError as error:
        sys.exit(f"error: {error}")
