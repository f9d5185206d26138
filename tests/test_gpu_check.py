"""The GPU check (benchmarks/gpu_check.sh) on the CPU: every part in its report, the CUDA parts left out and saying
why, the CPU parts passed; a failed part named with its output, and a non-zero exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PARTS = ["device", "precision", "data", "classifier", "gan", "generate-score", "torchrun", "input-pipeline", "sd-speed"]
CUDA_ONLY = {"precision", "torchrun", "sd-speed"}


def gpu_check(out: Path, *args: str) -> tuple[int, dict, str]:
    """(exit status, gpu-check.json, gpu-check.md) of one run on the CPU, one thread (a GPU machine too)."""
    env = {k: v for k, v in os.environ.items() if k not in ("GANAUG_DEVICES", "OUT")}
    env.update(GANAUG_DEVICE="cpu", OMP_NUM_THREADS="1", PYTHON=sys.executable)
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks/gpu_check.sh"), "--out", str(out), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert (out / "gpu-check.json").is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.returncode, json.loads((out / "gpu-check.json").read_text()), (out / "gpu-check.md").read_text()


def test_gpu_check_on_the_cpu_runs_its_cpu_parts_and_leaves_the_cuda_parts_out_saying_so(tmp_path):
    rc, report, md = gpu_check(tmp_path)
    parts = {p["part"]: p for p in report["parts"]}
    assert list(parts) == PARTS
    failed = {name: (p["detail"], p["tail"]) for name, p in parts.items() if p["status"] == "failed"}
    assert rc == 0 and not failed, failed
    for name in PARTS:
        assert f"| {name} | " in md
        expected = "left out: no CUDA device" if name in CUDA_ONLY else "passed"
        assert parts[name]["status"] == expected, (name, parts[name])
    assert "| precision | left out: no CUDA device (GANAUG_DEVICE=cpu) |" in md
    # the key numbers of a GPU run are there on the CPU too
    assert parts["device"]["numbers"]["precision"] == "fp32"
    assert parts["device"]["numbers"]["device line"].startswith("cpu")
    assert parts["classifier"]["numbers"]["steps/s"] > 0
    assert "float32 logits, contiguous input" in parts["classifier"]["numbers"]["first step"]
    assert parts["gan"]["numbers"]["G steps/s"] > 0
    generated = parts["generate-score"]["numbers"]
    assert generated["generate halved"].startswith("100 -> 50") and generated["score halved"].startswith("100 -> 50")
    assert "waiting" in parts["input-pipeline"]["numbers"]["1 workers"]
    assert report["result"] == "passed" and "**Result: passed.**" in md


def test_a_failed_part_is_named_with_its_output_the_rest_go_on_and_the_exit_status_is_1(tmp_path):
    rc, report, md = gpu_check(tmp_path, "--parts", "device,classifier", "--fail", "data")
    parts = {p["part"]: p for p in report["parts"]}
    assert rc == 1
    assert parts["data"]["status"] == "failed" and parts["data"]["detail"] == "exit status 3"
    assert "failing as asked (--fail)" in parts["data"]["tail"]
    assert parts["device"]["status"] == "passed"  # before it, and unaffected
    assert parts["classifier"]["status"] == "left out: needs data, which failed"
    assert parts["gan"]["status"] == "left out: not asked for"
    assert "**Result: FAILED: data.**" in md and "## data failed: exit status 3" in md
    assert "failing as asked (--fail)" in (tmp_path / "logs/data.log").read_text()


@pytest.mark.slow
def test_the_torchrun_part_passes_with_gloo_on_the_cpu(tmp_path):
    """What a GPU runs with NCCL: one torchrun rank taking the several-rank paths (here gloo, so no SyncBatchNorm)."""
    rc, report, _ = gpu_check(tmp_path, "--parts", "torchrun", "--gloo")
    torchrun = next(p for p in report["parts"] if p["part"] == "torchrun")
    assert rc == 0 and torchrun["status"] == "passed", torchrun
    assert torchrun["numbers"]["backend"] == "gloo" and torchrun["numbers"]["GAN gradient all-reduces"] > 0
