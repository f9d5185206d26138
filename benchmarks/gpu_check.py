"""The GPU check: every CUDA code path once, on small settings, in under 8 minutes on one GPU, with one report.

Parts (each in its own processes, under its own time limit; a failure is named and the others go on):

  device          the device line and its precision choice; GANAUG_DEVICE's one-line errors
  precision       (CUDA) autocast's dtype by compute capability, channels-last input, and the fp16 + GradScaler
                  branch of older GPUs forced once through the classifier loop
  data            a throwaway project in a temporary folder: fetch + prepare of scikit-learn's digits (RGB)
  classifier      train_scorer: the timm classifier with AMP and channels-last on CUDA (checked on its first step)
  gan             train_gan: a few hundred generator steps (a few on the CPU)
  generate-score  generate, projection, pseudo_label and score, with an out-of-memory error forced once in generate
                  and once in score: each must halve its batch and go on (a real CUDA allocation failure on a GPU)
  torchrun        (CUDA) train_scorer and train_gan under torchrun with NCCL, one rank, made to take the several-rank
                  paths (DistributedDataParallel, SyncBatchNorm, all-reduces); GANAUG_DEVICES=1 alone never starts
                  torchrun, and one GPU holds one NCCL rank
  input-pipeline  benchmarks/input_pipeline.py at 128 px RGB with 0 and 4 loader workers (a small size on the CPU)

Without CUDA the CUDA parts are left out ("left out: no CUDA device") and the rest run on small settings.
The report, gpu-check.md (and gpu-check.json, and each part's full output under logs/), goes to --out: default $OUT
when set, else reports/gpu-check/. Exit status 1 when any part failed. Run: `make gpu-check` or
`benchmarks/gpu_check.sh [--parts ...] [--small] [--keep] [--gloo]` (--help says more).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from traceback import format_exc

ROOT = Path(__file__).resolve().parents[1]
SELF = Path(__file__).resolve()
NO_CUDA = "left out: no CUDA device"
TAIL_LINES = 15


@dataclass
class Part:
    name: str
    what: str
    limit_s: int  # its own time limit (all its commands together)
    cuda_only: bool = False
    needs: tuple[str, ...] = ()


PARTS = [
    Part("device", "the device line and its precision choice", 60),
    Part("precision", "autocast dtype, channels-last, fp16 + GradScaler", 90, cuda_only=True),
    Part("data", "fetch + prepare: digits, RGB, in a temporary project", 90),
    Part("classifier", "train_scorer: AMP + channels-last on CUDA", 120, needs=("data",)),
    Part("gan", "train_gan, a few steps", 120, needs=("classifier",)),
    Part("generate-score", "generate + score, out of memory forced once in each", 150, needs=("gan",)),
    Part("torchrun", "train_scorer + train_gan under torchrun, NCCL, one rank", 150, cuda_only=True, needs=("data",)),
    Part("input-pipeline", "benchmarks/input_pipeline.py with loader workers", 120),
    Part("sd-speed", "benchmarks/sd_speed.py: full-size-config Stable Diffusion img2img in fp16", 240, cuda_only=True),
]
BY_NAME = {p.name: p for p in PARTS}

# the GPU's settings: seconds of work each, sized so start-up does not dominate every number
FULL = {
    "data": {
        "name": "digits",
        "image_size": 32,
        "channels": 3,
        "per_class": 100,
        "val_per_class": 20,
        "test_per_class": 50,
    },
    "train": {"epochs": 10, "batch_size": 64},
    "gan": {"steps": 300, "batch_size": 64, "ckpt_every": 300, "eval_every": 300, "eval_samples": 500},
    "generate": {"pool_multiple": 2, "batch_size": 500},
    "projection": {"per_class": 2, "steps": 20, "variants": 2},
    "score": {"batch_size": 500},
    "torchrun_gan_steps": 100,
    "input_pipeline": ["--shapes", "128x3", "--workers", "0", "4", "--steps", "20"],
}
# the CPU's (and --small's): the same paths, on as little work as runs them
SMALL = {
    "data": {
        "name": "digits",
        "image_size": 16,
        "channels": 3,
        "per_class": 20,
        "val_per_class": 5,
        "test_per_class": 10,
    },
    "train": {"epochs": 1, "batch_size": 16, "augment": {"hflip": False, "crop_padding": 1}},
    "gan": {
        "steps": 4,
        "batch_size": 16,
        "g_width": 8,
        "d_width": 8,
        "min_width": 8,
        "ckpt_every": 4,
        "eval_every": 4,
        "eval_samples": 50,
    },
    "generate": {"pool_multiple": 1, "batch_size": 100},
    "projection": {"per_class": 1, "steps": 2, "variants": 1},
    "score": {"batch_size": 100},
    "torchrun_gan_steps": 2,
    "input_pipeline": ["--shapes", "32x3", "--workers", "0", "1", "--steps", "2", "--batch", "8"],
}


class PartFailed(Exception):
    def __init__(self, message: str, tail: str = ""):
        super().__init__(message)
        self.message, self.tail = message, tail


@dataclass
class Context:
    cuda: bool
    small: bool
    work: Path
    logs: Path
    deadline: float  # time.monotonic() at which the whole check's budget ends
    env: dict
    forced_failures: set[str]
    part: Part | None = None
    part_ends: float = 0.0

    @property
    def settings(self) -> dict:
        return SMALL if self.small else FULL

    @property
    def project(self) -> Path:
        return self.work / "project"


# ---------------------------------------------------------------- running commands


def lines_of(text: str) -> list[str]:
    """Output lines as a terminal would leave them: a progress bar's \\r-redrawn line counts once, as its last state."""
    return [line.rsplit("\r", 1)[-1] for line in text.splitlines() if line.rsplit("\r", 1)[-1].strip()]


def tail_of(text: str, n: int = TAIL_LINES) -> str:
    return "\n".join(lines_of(text)[-n:])


def run_cmd(ctx: Context, cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> str:
    """Run one command of the current part under what is left of its limit (``env`` adds to the check's
    environment; None unsets); its output, or PartFailed with its tail."""
    if ctx.part.name in ctx.forced_failures:  # --fail: this part's first command fails, through the same path
        cmd = [sys.executable, "-c", "import sys; print('gpu-check: failing as asked (--fail)'); sys.exit(3)"]
    left = min(ctx.part_ends, ctx.deadline) - time.monotonic()
    if left <= 1:
        raise PartFailed("no time left (its limit or the check's --budget)")
    log = ctx.logs / f"{ctx.part.name}.log"
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        started = out.tell()
        # its own process group: a timeout ends loader workers too (torchrun ends its own workers on SIGTERM)
        proc = subprocess.Popen(
            cmd,
            cwd=cwd or ROOT,
            env={k: v for k, v in {**ctx.env, **(env or {})}.items() if v is not None},  # None: unset
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            rc = proc.wait(timeout=left)
        except subprocess.TimeoutExpired:
            stop(proc)
            rc = None
        except BaseException:  # Ctrl-C: its own session does not get it, so it is stopped here
            stop(proc)
            raise
    text = log.read_bytes()[started:].decode(errors="replace")
    if rc is None:
        raise PartFailed(f"timed out after {left:.0f} s", tail_of(text))
    if rc < 0:  # a signal from outside the check (its own timeout is named above)
        raise PartFailed(f"killed by {signal.Signals(-rc).name}", tail_of(text))
    if rc != 0:
        raise PartFailed(f"exit status {rc}", tail_of(text))
    return text


def stop(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def worker(ctx: Context, *args: str, cwd: Path | None = None, env: dict | None = None) -> tuple[str, dict]:
    """This script as a worker process (below): its output and the record it wrote."""
    record = ctx.work / f"record-{ctx.part.name}-{time.monotonic_ns()}.json"
    text = run_cmd(ctx, [sys.executable, str(SELF), "_worker", "--record", str(record), *args], cwd=cwd, env=env)
    return text, json.loads(record.read_text()) if record.exists() else {}


def check(ok: bool, message: str, text: str = "") -> None:
    if not ok:
        raise PartFailed(message, tail_of(text))


# ---------------------------------------------------------------- the parts


def part_device(ctx: Context) -> dict:
    # on CUDA without GANAUG_DEVICE: the default choice is under test
    text, rec = worker(ctx, "device", env={"GANAUG_DEVICE": None} if ctx.cuda else None)
    line = next((ln for ln in lines_of(text) if ln.startswith("device: ")), "")
    check(bool(line), "no 'device: ...' line printed", text)
    if ctx.cuda:
        check(line.startswith("device: cuda:"), f"CUDA is here but the default device is not it: {line}", text)
        expected = "bf16" if rec["capability"][0] >= 8 else "fp16 + GradScaler"
        check(line.endswith(f"{expected})"), f"compute capability {rec['capability']} wants {expected}: {line}", text)
    else:
        check(line.startswith("device: cpu"), f"no CUDA, but: {line}", text)
    for name, message in rec["errors"].items():
        check(message.startswith("GANAUG_DEVICE="), f"GANAUG_DEVICE={name} gave no one-line error: {message}", text)
    return {
        "device line": line.removeprefix("device: "),
        "precision": rec["precision"],
        "torch": rec["torch"],
        "torch CUDA build": rec["cuda_version"] or "none",
    }


def part_precision(ctx: Context) -> dict:
    text, rec = worker(ctx, "precision")
    check(
        rec.get("autocast") == rec.get("expected"),
        f"autocast gave {rec.get('autocast')}, not {rec.get('expected')}",
        text,
    )
    check(rec.get("input_format") == "channels-last", f"the classifier's input is {rec.get('input_format')}", text)
    check(rec.get("fp16_loss_finite") is True, "the fp16 + GradScaler loop's loss is not finite", text)
    return {
        "compute capability": ".".join(map(str, rec["capability"])),
        "autocast": rec["autocast"],
        "fp16 + GradScaler loop": f"loss {rec['fp16_loss']:.3f}",
    }


def params_for(ctx: Context, **changes) -> dict:
    sections = ("data", "train", "gan", "generate", "projection", "score")
    params = {
        **{section: ctx.settings[section] for section in sections},
        "experiments": {"samplers": ["random", "dapper"]},  # dapper: the plan stage asks for the projection
        "mlflow": {"experiment": "gpu-check"},
    }
    for section, values in changes.items():
        params[section] = {**params[section], **values}
    return params


def write_params(folder: Path, params: dict) -> None:
    import yaml

    from ganaug.params import load_params

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "params.yaml").write_text(
        yaml.safe_dump(load_params(ROOT / "params.yaml", params).model_dump(), sort_keys=False)
    )


def part_data(ctx: Context) -> dict:
    write_params(ctx.project, params_for(ctx))
    text, _ = worker(ctx, "stages", *pipeline_stages("fetch", "prepare"), cwd=ctx.project)
    said = re.search(r"prepare: (.*?) ->", text)
    check((ctx.project / "data/prepared/train.npz").is_file() and said, "prepare wrote no data/prepared", text)
    return {"prepared": said[1]}


def expected_forward(ctx: Context, capability: list[int] | None) -> tuple[str, str]:
    if not ctx.cuda:
        return "torch.float32", "contiguous"
    return ("torch.bfloat16" if capability and capability[0] >= 8 else "torch.float16"), "channels-last"


def part_classifier(ctx: Context) -> dict:
    text, rec = worker(ctx, "stages", "ganaug.stages.train_scorer", cwd=ctx.project)
    check("classifier" in rec and "first_step" in rec, "train_scorer ran no probed train_and_report / fit", text)
    first = rec["first_step"]
    dtype, layout = expected_forward(ctx, rec.get("capability"))
    check(first.get("output_dtype") == dtype, f"first training step's logits are {first.get('output_dtype')}", text)
    check(first.get("input_format") == layout, f"first training step's input is {first.get('input_format')}", text)
    run = rec["classifier"]
    return {
        "steps": run["steps"],
        "steps/s": round(run["steps"] / run["train_seconds"], 1),
        "img/s": run["images_per_second"],
        "test accuracy": run["test_accuracy"],
        "first step": f"{first['device']}, {first['output_dtype'].removeprefix('torch.')} logits, {layout} input",
        "loader workers": first["loader_workers"],
    }


def part_gan(ctx: Context) -> dict:
    text, rec = worker(ctx, "stages", "ganaug.stages.train_gan", cwd=ctx.project)
    check("gan" in rec, "train_gan ran no probed ganaug.gan.train.train_gan", text)
    gan = rec["gan"]
    check(gan["device"].startswith("cuda" if ctx.cuda else "cpu"), f"G trained on {gan['device']}", text)
    check((ctx.project / "models/gan").is_dir(), "train_gan wrote no models/gan", text)
    return {
        "G steps": gan["steps"],
        "G steps/s": round(gan["steps"] / gan["seconds"], 2),
        "note": "steps/s includes the one evaluation and checkpoint",
    }


def pipeline_stages(first: str, last: str) -> list[str]:
    """The modules of dvc.yaml's single stages from ``first`` to ``last``, in its order: whatever stages the pipeline
    holds between them now (plan, projection, pseudo_label, ...)."""
    import yaml

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    names = list(stages)
    modules = []
    for name in names[names.index(first) : names.index(last) + 1]:
        found = re.fullmatch(r"python -m (ganaug\.stages\.\w+)", str(stages[name].get("cmd", "")).strip())
        if found and "matrix" not in stages[name] and "foreach" not in stages[name]:
            modules.append(found[1])
    return modules


def part_generate_score(ctx: Context) -> dict:
    stages = pipeline_stages("generate", "score")
    text, rec = worker(ctx, "stages", "--oom", *stages, cwd=ctx.project)
    halvings = {}
    for what in ("generate", "score"):
        forced = rec.get("oom", {}).get(what)
        check(forced is not None, f"no out-of-memory was forced in {what}", text)
        # not anchored to a line start: a progress bar's last state may precede it on its line
        said = re.search(rf"{what}[^:\n]*: out of device memory at (\d+) images a batch; going on with (\d+)", text)
        check(said is not None, f"{what} did not say it halved its batch", text)
        halvings[what] = f"{said[1]} -> {said[2]} ({forced['kind']})"
    pool = re.search(r"generate: (\d+) images", text)
    scored = re.search(r"score: pool: (\d+) images", text)
    check(pool is not None and scored is not None, "no pool or no score lines", text)
    check(pool[1] == scored[1], f"{pool[1]} pool images but {scored[1]} scored", text)
    ran = ", ".join(m.rsplit(".", 1)[1] for m in stages)
    return {"stages": ran, "pool images": int(pool[1]), **{f"{k} halved": v for k, v in halvings.items()}}


def part_torchrun(ctx: Context) -> dict:
    folder = ctx.work / "torchrun"
    steps = ctx.settings["torchrun_gan_steps"]
    gan = {"steps": steps, "ckpt_every": steps, "eval_every": steps}
    write_params(folder, params_for(ctx, gan=gan, train={"deterministic": False}))  # + cuDNN benchmark mode
    shutil.copytree(ctx.project / "data/prepared", folder / "data/prepared")
    record = folder / "record.json"
    cmd = [
        *(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"),
        *(str(SELF), "_worker", "--record", str(record), "stages", "--ranks"),
        *("ganaug.stages.train_scorer", "ganaug.stages.train_gan"),
    ]
    text = run_cmd(ctx, cmd, cwd=folder)
    rec = json.loads(record.read_text()) if record.exists() else {}
    ranks = rec.get("ranks", {})
    check("classifier" in rec, "train_scorer under torchrun ran no probed train_and_report", text)
    backend = "nccl" if ctx.cuda else "gloo"
    check(ranks.get("backend") == backend, f"process group backend {ranks.get('backend')}, not {backend}", text)
    check(ranks.get("wrapped") == "DistributedDataParallel", f"the classifier was not in DDP: {ranks}", text)
    check(ranks.get("gan_all_reduces", 0) > 0, "train_gan averaged no gradients over ranks", text)
    check(ranks["sync_batchnorm"] > 0 or not ctx.cuda, "no SyncBatchNorm in the classifier on CUDA", text)
    return {
        "backend": ranks["backend"],
        "world size": ranks["world_size"],
        "SyncBatchNorm layers": ranks["sync_batchnorm"],
        "GAN gradient all-reduces": ranks["gan_all_reduces"],
        "test accuracy": rec["classifier"]["test_accuracy"],
    }


def part_input_pipeline(ctx: Context) -> dict:
    args = ctx.settings["input_pipeline"]
    text = run_cmd(ctx, [sys.executable, str(ROOT / "benchmarks/input_pipeline.py"), *args])
    rows = re.findall(r"^\| (\d+) px, (\d+) ch \| (\d+) \| ([\d.]+) \| ([\d.]+)% \|", text, re.M)
    workers = args[args.index("--workers") + 1 : args.index("--steps")]
    check(len(rows) == len(workers), f"{len(rows)} result rows for workers {workers}", text)
    out = {"images": f"{rows[0][0]} px x {rows[0][1]} ch"}
    for _, _, n, step_ms, wait in rows:
        out[f"{n} workers"] = f"step {step_ms} ms, waiting {wait}%"
    return out


def part_sd_speed(ctx: Context) -> dict:
    # random weights of SD 1.5's size (nothing to download): the images/s a pool of gan.arch sd costs on this GPU
    speed_cmd = [sys.executable, str(ROOT / "benchmarks/sd_speed.py"), "--full", "--steps", "4", "--batch", "8"]
    text = run_cmd(ctx, speed_cmd)
    speed = re.search(r"-> ([\d.]+) images/s", text)
    ratio = re.search(r"pipeline / bare = ([\d.]+)", text)
    check(speed is not None and ratio is not None, "an images/s line and a pipeline / bare line", text)
    return {"img2img images/s (batch 8, 512 px)": speed.group(1), "pipeline / bare UNet per step": ratio.group(1)}


RUNS = {
    "device": part_device,
    "precision": part_precision,
    "data": part_data,
    "classifier": part_classifier,
    "gan": part_gan,
    "generate-score": part_generate_score,
    "torchrun": part_torchrun,
    "input-pipeline": part_input_pipeline,
    "sd-speed": part_sd_speed,
}


# ---------------------------------------------------------------- the worker: runs inside the parts' processes


def worker_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="gpu_check.py _worker")
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("job", choices=["device", "precision", "stages"])
    parser.add_argument("--oom", action="store_true", help="force one out-of-memory error in generate and in score")
    parser.add_argument("--ranks", action="store_true", help="under torchrun: take the several-rank paths")
    parser.add_argument("modules", nargs="*")
    args = parser.parse_intermixed_args(argv)
    record: dict = {}
    try:
        if args.job == "device":
            probe_device(record)
        elif args.job == "precision":
            probe_precision(record)
        else:
            run_stages(args, record)
    finally:
        args.record.write_text(json.dumps(record, indent=1, default=str))


def probe_device(record: dict) -> None:
    import torch

    from ganaug import device as dev
    from ganaug.errors import GanaugError

    chosen = dev.pick_device()  # prints the device line
    dtype = dev.half_precision(chosen)
    record.update(
        torch=torch.__version__,
        cuda_version=torch.version.cuda,
        precision={torch.bfloat16: "bf16", torch.float16: "fp16 + GradScaler", None: "fp32"}[dtype],
        capability=list(torch.cuda.get_device_capability(chosen)) if chosen.type == "cuda" else None,
        errors={},
    )
    wrong = ["tpu"] + ([f"cuda:{torch.cuda.device_count()}"] if chosen.type == "cuda" else ["cuda"])
    for value in wrong:
        os.environ[dev.DEVICE_ENV] = value
        try:
            dev.pick_device()
            record["errors"][value] = "accepted"
        except GanaugError as err:
            record["errors"][value] = str(err)


def probe_precision(record: dict) -> None:
    import numpy as np
    import timm
    import torch

    from ganaug import device as dev
    from ganaug.classify.normalize import Normalizer
    from ganaug.classify.train import Phase, fit
    from ganaug.data.store import Split
    from ganaug.params import load_params

    device = dev.pick_device()
    record["capability"] = list(torch.cuda.get_device_capability(device))
    record["expected"] = str(dev.half_precision(device))
    conv = torch.nn.Conv2d(3, 8, 3).to(device=device, memory_format=dev.memory_format(device))
    images = np.random.default_rng(0).integers(0, 256, (64, 16, 16, 3), dtype=np.uint8)
    x = Normalizer.fit(images).to_input(images, device)
    record["input_format"] = "channels-last" if x.is_contiguous(memory_format=torch.channels_last) else "contiguous"
    with dev.autocast(device):
        record["autocast"] = str(conv(x).dtype)
    # the branch of GPUs below compute capability 8 (T4, V100): fp16 autocast with a GradScaler, on this GPU
    dev.half_precision = lambda d: torch.float16 if d.type == "cuda" else None
    cfg = load_params(ROOT / "params.yaml", {"train": {"epochs": 1, "batch_size": 16}}).train
    labels = np.arange(64) % 10
    data = Split(images, labels, np.array([str(i) for i in range(64)]))
    model = timm.create_model("resnet10t", num_classes=10, in_chans=3)
    history, _ = fit(model, Phase("train", data, cfg), data, 10, device)
    record["fp16_loss"] = history[-1]["train_loss"]
    record["fp16_loss_finite"] = bool(np.isfinite(history[-1]["train_loss"]))


def run_stages(args, record: dict) -> None:
    """The stage modules, in this one process (one start-up), as `python -m` would run them, with probes that
    record what the report needs: the classifier's first training step and timing, the GAN's steps and time,
    and (--oom) one forced out-of-memory error per kind of batch work, (--ranks) the several-rank paths."""
    import runpy

    import torch

    if torch.cuda.is_available() and os.environ.get("GANAUG_DEVICE", "").startswith("cuda"):
        record["capability"] = list(torch.cuda.get_device_capability())
    probe_classifier(record)
    probe_gan(record)
    if args.oom:
        force_out_of_memory_once(record)
    if args.ranks:
        take_rank_paths(record)
    saved_argv = sys.argv
    for module in args.modules:
        sys.argv = [module]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    sys.argv = saved_argv
    if args.ranks:
        import torch.distributed as dist

        dist.destroy_process_group()


def probe_classifier(record: dict) -> None:
    import torch

    from ganaug.classify import loader, run

    train_and_report, fit = run.train_and_report, run.fit

    def probed_fit(model, phase, *rest, **kw):
        first: dict = {}

        def hook(module, inputs, output):
            if module.training and not first:
                x = inputs[0]
                channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
                first.update(
                    device=str(x.device),
                    input_format="channels-last" if channels_last else "contiguous",
                    output_dtype=str(output.dtype),
                    loader_workers=loader.loader_workers(x.device),
                )

        handle = model.register_forward_hook(hook)
        try:
            return fit(model, phase, *rest, **kw)
        finally:
            handle.remove()
            record.setdefault("first_step", first)

    def timed(*a, **kw):
        metrics, timing = train_and_report(*a, **kw)
        if metrics is not None:
            record["classifier"] = {
                "steps": metrics["steps"],
                "train_seconds": timing["train_seconds"],
                "images_per_second": timing["train_images_per_second"],
                "test_accuracy": metrics["test_accuracy"],
            }
        return metrics, timing

    run.fit, run.train_and_report = probed_fit, timed  # before the stage module imports it by name


def probe_gan(record: dict) -> None:
    from ganaug.gan import train

    train_gan = train.train_gan

    def timed(*a, **kw):
        started = time.perf_counter()
        gan = train_gan(*a, **kw)
        device = next(gan.G.parameters()).device
        record["gan"] = {"steps": gan.step, "seconds": time.perf_counter() - started, "device": str(device)}
        return gan

    train.train_gan = timed


def force_out_of_memory_once(record: dict) -> None:
    """The first piece of batch work of each kind (generate, score) fails as out of memory: on CUDA by asking the
    allocator for a petabyte, so the error is the real one; elsewhere by raising it."""
    import torch

    from ganaug import device as dev

    run = dev.ShrinkOnOutOfMemory.run
    forced = record.setdefault("oom", {})

    def provoke(what: str, n: int) -> None:
        if torch.cuda.is_available() and os.environ.get("GANAUG_DEVICE", "").startswith("cuda"):
            try:
                torch.empty(1 << 50, dtype=torch.uint8, device=os.environ["GANAUG_DEVICE"])
            except torch.OutOfMemoryError:
                forced[what] = {"images": n, "kind": "CUDA allocator"}
                raise
            except RuntimeError:  # an allocator that refuses the size some other way: the raised error below
                pass
        forced[what] = {"images": n, "kind": "raised"}
        raise torch.OutOfMemoryError(f"out of memory (forced by the GPU check in {what})")

    def run_once_short(self, fn, n):
        what = self.what.split()[0]  # "score pool" -> score
        if what in forced or n < 2:
            return run(self, fn, n)
        pending = [True]

        def first_fails(a, b):
            if pending:
                pending.clear()
                provoke(what, b - a)
            return fn(a, b)

        return run(self, first_fails, n)

    dev.ShrinkOnOutOfMemory.run = run_once_short


def take_rank_paths(record: dict) -> None:
    """One torchrun rank takes the code of several: ganaug's distributed helpers act when a process group of more
    than one rank is up, and one GPU holds one NCCL rank, so here they are told it is up (a one-rank all-reduce is
    the identity, so the results stay one process's)."""
    import torch
    import torch.distributed as dist

    from ganaug import distributed

    cuda = os.environ.get("GANAUG_DEVICE", "").startswith("cuda")
    if cuda:
        os.environ["GANAUG_DEVICE"] = f"cuda:{os.environ['LOCAL_RANK']}"
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl" if cuda else "gloo")
    ranks = record.setdefault("ranks", {"backend": dist.get_backend(), "world_size": dist.get_world_size()})
    ranks["gan_all_reduces"] = 0
    wrap, average_gradients = distributed.wrap, distributed.average_gradients

    def wrapped(model, device):
        net = wrap(model, device)
        ranks["wrapped"] = type(net).__name__
        ranks["sync_batchnorm"] = sum(isinstance(m, torch.nn.SyncBatchNorm) for m in net.modules())
        return net

    def averaged(module):
        ranks["gan_all_reduces"] += 1
        average_gradients(module)

    distributed.active = lambda: True
    distributed.shutdown = lambda: None  # the group outlives each stage: two stages run in this process
    distributed.wrap, distributed.average_gradients = wrapped, averaged


# ---------------------------------------------------------------- the report


def write_report(out: Path, results: list[dict], about: dict) -> None:
    failed = [r["part"] for r in results if r["status"] == "failed"]
    verdict = f"FAILED: {', '.join(failed)}" if failed else "passed"
    lines = [
        "# GPU check",
        "",
        f"{about['date']}, {about['host']}: {about['device']}; torch {about['torch']}; "
        f"{about['settings']} settings; {about['seconds']:.0f} s in all. **Result: {verdict}.**",
        "",
        "| part | status | seconds | numbers |",
        "| --- | --- | --- | --- |",
    ]
    for r in results:
        numbers = "; ".join(f"{k}: {v}" for k, v in r["numbers"].items())
        detail = f" ({r['detail']})" if r.get("detail") else ""
        lines.append(f"| {r['part']} | {r['status']}{detail} | {r['seconds']:.1f} | {numbers.replace('|', '/')} |")
    for r in results:
        if r["status"] == "failed":
            lines += ["", f"## {r['part']} failed: {r['detail']}", "", "```", r["tail"] or "(no output)", "```"]
    lines += ["", f"Each part's full output: {out / 'logs'}/<part>.log", ""]
    (out / "gpu-check.md").write_text("\n".join(lines))
    (out / "gpu-check.json").write_text(json.dumps({**about, "result": verdict, "parts": results}, indent=1) + "\n")


def cuda_state() -> tuple[bool, str]:
    """(CUDA is used, why not): GANAUG_DEVICE=cpu keeps a GPU machine to the CPU parts."""
    import torch

    if os.environ.get("GANAUG_DEVICE", "").strip() == "cpu":
        return False, "GANAUG_DEVICE=cpu"
    if not torch.cuda.is_available():
        return False, f"torch {torch.__version__} sees none"
    return True, ""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_worker"]:
        worker_main(argv[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = Path(os.environ["OUT"]) if os.environ.get("OUT") else ROOT / "reports/gpu-check"
    parser.add_argument("--out", type=Path, default=default_out, help="report folder (default: $OUT, else %(default)s)")
    names = ", ".join(BY_NAME)
    parser.add_argument("--parts", help=f"comma-separated subset (and what they need) of: {names}")
    parser.add_argument("--small", action="store_true", help="the CPU's small settings on a GPU too (a smoke run)")
    parser.add_argument("--budget", type=float, default=470, help="seconds for everything (default %(default)s)")
    parser.add_argument("--fail", default="", help="parts to fail on purpose (comma-separated): tests the report")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project (its path is printed)")
    parser.add_argument("--gloo", action="store_true", help="without CUDA, run the torchrun part anyway, with gloo")
    args = parser.parse_args(argv)
    wanted = set(BY_NAME) if not args.parts else set(args.parts.split(","))
    unknown = (wanted | set(filter(None, args.fail.split(",")))) - set(BY_NAME)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}: expected {names}")
    for name in [p.name for p in reversed(PARTS)]:  # what a wanted part needs is wanted too
        if name in wanted:
            wanted |= set(BY_NAME[name].needs)

    started = time.monotonic()
    cuda, why_not = cuda_state()
    out = args.out.resolve()
    logs = out / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    work = Path(tempfile.mkdtemp(prefix="ganaug-gpu-check-"))
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "GANAUG_DEVICES")}
    env.update(
        MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}",  # never the project's or a team's store
        GANAUG_DEVICES="1",
        GIT_PYTHON_REFRESH="quiet",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")])),
    )
    if cuda and not env.get("GANAUG_DEVICE", "").startswith("cuda:"):
        env["GANAUG_DEVICE"] = "cuda:0"
    fail = set(args.fail.split(","))
    ctx = Context(cuda, args.small or not cuda, work, logs, started + args.budget, env, fail)
    print(f"gpu-check: {'CUDA' if cuda else 'no CUDA (' + why_not + ')'}; work in {work}; report in {out}", flush=True)

    results, status = [], {}
    for part in PARTS:
        t0 = time.monotonic()
        result = {"part": part.name, "what": part.what, "numbers": {}, "detail": "", "tail": ""}
        blocked = [n for n in part.needs if status[n] != "passed"]
        if part.name not in wanted:
            result["status"] = "left out: not asked for"
        elif part.cuda_only and not cuda and not (part.name == "torchrun" and args.gloo):
            result["status"], result["detail"] = NO_CUDA, why_not
        elif blocked:
            how = "failed" if status[blocked[0]] == "failed" else "was left out"
            result["status"] = f"left out: needs {blocked[0]}, which {how}"
        else:
            ctx.part, ctx.part_ends = part, t0 + part.limit_s
            print(f"gpu-check: {part.name}: {part.what} ...", flush=True)
            try:
                result["numbers"] = RUNS[part.name](ctx)
                result["status"] = "passed"
            except PartFailed as err:
                result.update(status="failed", detail=err.message, tail=err.tail)
            except Exception as err:  # a bug in the check itself: still named, still only this part
                result.update(status="failed", detail=f"{type(err).__name__}: {err}", tail=tail_of(format_exc()))
        result["seconds"] = round(time.monotonic() - t0, 1)
        status[part.name] = result["status"]
        if result["status"] in ("passed", "failed"):
            print(f"gpu-check: {part.name}: {result['status']} in {result['seconds']} s {result['detail']}", flush=True)
        results.append(result)

    device = next((r["numbers"].get("device line") for r in results if r["part"] == "device"), None)
    about = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host": platform.node(),
        "device": device or ("CUDA" if cuda else "CPU"),
        "torch": __import__("torch").__version__,
        "settings": "small" if ctx.small else "full",
        "seconds": time.monotonic() - started,
    }
    write_report(out, results, about)
    if args.keep:
        print(f"gpu-check: the temporary project stays in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    failed = [r["part"] for r in results if r["status"] == "failed"]
    print(f"gpu-check: {'failed: ' + ', '.join(failed) if failed else 'passed'}; report {out / 'gpu-check.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
