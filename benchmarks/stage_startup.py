"""How long an experiment stage takes from process start to its first optimiser step, against the floor of
`python -c "import torch, timm"` in the same run (the ratio reported), with where that time goes: imports, the
data, the selection, MLflow's store and run, the input digests. Run by hand after `make run` (it reads the
pipeline's data/prepared, pool and scores, copied into a scratch folder with its own MLflow store, so the
project's outputs and runs are untouched): `python benchmarks/stage_startup.py [--repeats 5] [--warm 3]`
(--warm: the same stage handed to a warm server, ganaug.warm, run to its end each time)."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPY = ("params.yaml", "data/prepared", "data/synthetic/pool", "data/scores")

# Runs inside the measured process: times the parts of the stage's start-up by wrapping the functions that do
# them, and ends the process at the first optimiser step (a global hook on every optimiser).
PROBE = r"""
import json, os, sys, time
from ganaug.timing import process_start  # light: json, os, time

parts, t = {}, time.time()
parts["interpreter"] = t - process_start()

def timed(label, fn):
    def wrapper(*args, **kwargs):
        start = time.time()
        try:
            return fn(*args, **kwargs)
        finally:
            parts[label] = parts.get(label, 0.0) + time.time() - start
    return wrapper

for label, module in [("import numpy, pandas", "pandas"), ("import torch", "torch"), ("import timm", "timm"),
                      ("import albumentations", "albumentations"), ("import mlflow", "mlflow"),
                      ("import ganaug", "ganaug.stages.experiment")]:
    start = time.time(); __import__(module); parts[label] = time.time() - start
start = time.time()
import ganaug.classify.run, ganaug.experiment.run, ganaug.tracking, ganaug.digests, ganaug.data.store
parts["import ganaug"] += time.time() - start
parts["torch._dynamo loaded"] = float("torch._dynamo" in sys.modules)
parts["diffusers loaded"] = float("diffusers" in sys.modules)

import torch, mlflow
from ganaug import data, digests, tracking
from ganaug.experiment import run as experiment
data.store.load_split = timed("read data/prepared", data.store.load_split)
experiment.build_training_set = timed("build the training set (selection)", experiment.build_training_set)
tracking.open_experiment = timed("MLflow store (schema check) + experiment", tracking.open_experiment)
tracking.git_state = timed("git state", tracking.git_state)
tracking.dvc_md5 = timed("input digests", tracking.dvc_md5)
digests.dvc_md5 = timed("input digests", digests.dvc_md5)
mlflow.start_run = timed("MLflow run: start", mlflow.start_run)
mlflow.log_params = timed("MLflow run: params", mlflow.log_params)
mlflow.log_input = timed("MLflow run: inputs", mlflow.log_input)
ganaug.classify.run.create_classifier = timed("create the model", ganaug.classify.run.create_classifier)

def first_step(optimizer, args, kwargs):
    parts["to the first step"] = time.time() - process_start()
    print(json.dumps(parts), flush=True)
    os._exit(0)

from torch.optim.optimizer import register_optimizer_step_pre_hook
register_optimizer_step_pre_hook(first_step)
sys.argv = ["experiment", "augment", "random", "1", "0"]
import runpy
runpy.run_module("ganaug.stages.experiment", run_name="__main__")
"""


def scratch_project(where: Path) -> Path:
    for name in COPY:
        source = ROOT / name
        if not source.exists():
            sys.exit(f"{source}: not found; run `make run` first (the benchmark reads the pipeline's outputs)")
        target = where / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
    return where


def run_probe(project: Path, env: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=project, env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        sys.exit(f"the probed stage failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def floor_seconds(env: dict) -> float:
    start = time.time()
    subprocess.run([sys.executable, "-c", "import torch, timm"], env=env, check=True)
    return time.time() - start


def warm_starts(project: Path, env: dict, repeats: int) -> list[float]:
    """The same stage handed to a warm server (ganaug.warm): seconds from its process start to its work, as the
    stage's own line in logs/stage-times.jsonl says (the work begins with the model, just before the first step).
    Each run trains to its end, so this takes repeats x a run's training."""
    sock = project / "warm.sock"
    server = subprocess.Popen([sys.executable, "-m", "ganaug.warm", "--serve", str(sock)], cwd=project, env=env)
    try:
        deadline = time.monotonic() + 120
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        if not sock.exists():
            sys.exit("the warm server did not start")
        command = [sys.executable, "-m", "ganaug.stages.experiment", "augment", "random", "1", "0"]
        for _ in range(repeats):
            subprocess.run(command, cwd=project, env={**env, "GANAUG_WARM": str(sock)}, check=True, capture_output=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    lines = [json.loads(line) for line in (project / "logs/stage-times.jsonl").read_text().splitlines()]
    return [r["work_start"] - r["start"] for r in lines if r.get("warm")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warm", type=int, default=0, help="also this many runs handed to a warm server (whole runs)")
    args = parser.parse_args()
    import os

    with tempfile.TemporaryDirectory() as tmp:
        project = scratch_project(Path(tmp) / "project")
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{Path(tmp) / 'mlflow.db'}", "OMP_NUM_THREADS": "1"}
        run_probe(project, env)  # the store's tables are created once, as in a project that has run before
        probes, floors = [], []
        for _ in range(args.repeats):
            floors.append(floor_seconds(env))
            probes.append(run_probe(project, env))
        warm = warm_starts(project, env, args.warm) if args.warm else []
    median = {k: statistics.median(p.get(k, 0.0) for p in probes) for k in probes[0]}
    floor = statistics.median(floors)
    total = median.pop("to the first step")
    print(f"process start to the first optimiser step of augment@random-1-0 (median of {args.repeats}):")
    for label, seconds in median.items():
        if label.endswith("loaded"):
            print(f"  {label:45s} {'yes' if seconds else 'no'}")
        else:
            print(f"  {label:45s} {seconds:6.2f} s")
    print(f"  {'total':45s} {total:6.2f} s")
    print(f'python -c "import torch, timm": {floor:.2f} s; the stage start-up / that = {total / floor:.2f}x')
    if warm:
        w = statistics.median(warm)
        print(f"handed to a warm server (ganaug.warm), process start to its work: {w:.2f} s (median of {len(warm)});")
        print(f"  / the import floor = {w / floor:.2f}x; / the stage on its own = {w / total:.2f}x")


if __name__ == "__main__":
    main()
