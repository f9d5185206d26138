"""The timing table of `make run`: stage lines appended by each stage process, summed per stage family."""

from __future__ import annotations

import json
import subprocess
import sys

from ganaug.timing import timing_table
from tests.conftest import write_params


def test_timing_table_sums_work_start_up_and_the_gaps_between_stages(tmp_path):
    log = tmp_path / "stage-times.jsonl"
    rows = [
        {"run_start": 100.0},  # an earlier run: its lines are not counted
        {"stage": "old", "start": 100.0, "end": 900.0, "work_start": 100.0, "work_end": 900.0, "work_seconds": 800.0},
        {"run_start": 0.0},
        {"stage": "train_gan", "start": 1, "end": 6, "work_start": 2, "work_end": 5, "work_seconds": 3},
        {"stage": "augment@random-1-0", "start": 7, "end": 13, "work_start": 9, "work_end": 12, "work_seconds": 3},
        {"stage": "augment@random-1-1", "start": 14, "end": 21, "work_start": 16, "work_end": 20, "work_seconds": 4},
    ]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    lines = timing_table(log)
    assert "| train_gan | 1 | 5.0 | 3.0 | 1.0 | 1.0 |" in lines
    assert "| augment | 2 | 13.0 | 7.0 | 4.0 | 2.0 |" in lines
    assert "| between stages (DVC, process spawn) | | 3.0 | | | |" in lines  # 21 s in all, 18 inside stages
    assert "| **total** | 3 | **21.0** | **10.0** | | |" in lines
    assert "pipeline / work = 2.10x" in lines
    assert any(
        line.startswith("between two experiment runs' training (end of one to start of the next): 4.0 s")
        for line in lines
    )


def test_a_stage_process_records_its_start_work_and_end(tmp_path):
    write_params(tmp_path, {"experiments": {"samplers": ["random"]}})
    subprocess.run([sys.executable, "-m", "ganaug.timing", "start"], cwd=tmp_path, check=True)
    proc = subprocess.run([sys.executable, "-m", "ganaug.stages.plan"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    failed = subprocess.run([sys.executable, "-m", "ganaug.stages.prepare"], cwd=tmp_path, capture_output=True)
    assert failed.returncode == 1  # no raw data: the stage fails, and its line says so
    lines = [json.loads(line) for line in (tmp_path / "logs/stage-times.jsonl").read_text().splitlines()]
    assert "run_start" in lines[0]
    plan, prepare = lines[1], lines[2]
    assert plan["stage"] == "plan" and plan["status"] == "ok"
    assert lines[0]["run_start"] - 1 < plan["start"] <= plan["work_start"] <= plan["work_end"] <= plan["end"]
    assert prepare["stage"] == "prepare" and prepare["status"] == "failed"
