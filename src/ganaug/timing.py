"""Where a pipeline run's time goes: each stage process appends one line to logs/stage-times.jsonl (its process
start, when its work began and ended, and its end), and `make run` marks its own start there. The table that
`python -m ganaug.summary --timings` prints comes from these lines: per stage family, the work (training,
generation, scoring), the stage's own start-up and wrap-up around it, and what lies between stage processes (DVC
hashing, the lock, the next interpreter starting). Wall-clock times vary run to run: they never go into a DVC
output."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

LOG = Path("logs/stage-times.jsonl")
_work: list[float] = []  # [first start, last end, seconds inside work blocks] of this process


def log_path() -> Path:
    """In the project itself, also under `dvc exp run --temp` or `--queue` (a temporary copy: $DVC_ROOT)."""
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()) / LOG


def process_start() -> float:
    """This process's start as a Unix time: from /proc on Linux (so the interpreter's own start-up counts), else
    the earliest moment Python can tell. A stage that a warm server runs (ganaug.warm) started with its client."""
    if os.environ.get("GANAUG_WARM_CLIENT_START"):
        return float(os.environ["GANAUG_WARM_CLIENT_START"])
    try:  # its age from the kernel's clock since boot (10 ms resolution), taken from now
        ticks = int(Path("/proc/self/stat").read_text().rpartition(")")[2].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.time() - time.process_time()


@contextlib.contextmanager
def work():
    """A block of the work a stage exists for (training, generating, scoring, building the report)."""
    start = time.time()
    try:
        yield
    finally:
        end = time.time()
        if _work:
            _work[1], _work[2] = end, _work[2] + end - start
        else:
            _work.extend([start, end, end - start])


def whole_run_was_work(start: float) -> None:
    """A stage that marked no work block: its whole run, from ``start``, was its work (fetch, prepare, the report)."""
    if not _work:
        end = time.time()
        _work.extend([start, end, end - start])


def record(stage: str, status: str) -> None:
    """One line for this stage process; a log that cannot be written never fails the stage."""
    row = {"stage": stage, "pid": os.getpid(), "start": round(process_start(), 3), "end": round(time.time(), 3)}
    if _work:
        row.update(work_start=round(_work[0], 3), work_end=round(_work[1], 3), work_seconds=round(_work[2], 3))
    if os.environ.get("GANAUG_WARM_CLIENT_START"):
        row["warm"] = True  # run by a warm server (ganaug.warm)
    row["status"] = status
    with contextlib.suppress(OSError):
        path = log_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as log:
            log.write(json.dumps(row) + "\n")


def stage_name(argv: list[str]) -> str:
    """The DVC stage a command line runs: `python -m ganaug.stages.experiment augment random 1 0` is
    augment@random-1-0, as dvc.yaml's matrix names it."""
    module = Path(argv[0]).stem if argv else "?"
    if module == "experiment" and len(argv) >= 5:
        return f"{argv[1]}@{'-'.join(argv[2:5])}"
    return module


def mark_run_start() -> None:
    """`make run` starts here: the timing table reads the stage lines after the last such mark."""
    path = log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as log:
        log.write(json.dumps({"run_start": round(time.time(), 3)}) + "\n")


def last_run(path: Path) -> tuple[float | None, list[dict]]:
    """The last run's start mark (None if it has none) and its stage lines, one per stage (a stage that torchrun
    started again is its launcher's line widened by its ranks')."""
    start, rows = None, []
    for line in path.read_text().splitlines() if path.is_file() else []:
        row = json.loads(line)
        if "run_start" in row:
            start, rows = row["run_start"], []
        else:
            rows.append(row)
    merged: dict[str, dict] = {}
    for row in rows:
        seen = merged.setdefault(row["stage"], dict(row))
        seen["start"], seen["end"] = min(seen["start"], row["start"]), max(seen["end"], row["end"])
        if row.get("work_seconds", -1) > seen.get("work_seconds", -1):
            seen.update({k: row[k] for k in ("work_start", "work_end", "work_seconds")})
    return start, sorted(merged.values(), key=lambda r: r["start"])


def family(stage: str) -> str:
    return stage.partition("@")[0]


def timing_table(path: Path | None = None) -> list[str]:
    """Where the last `make run` spent its time, per stage family, as markdown lines."""
    start, rows = last_run(path or log_path())
    if not rows and start is not None:
        return ["timings: no stage ran in the last `make run` (the pipeline was up to date)"]
    if not rows:
        return [f"no stage timings in {path or log_path()}: run `make run`"]
    start = start if start is not None else rows[0]["start"]
    total = max(r["end"] for r in rows) - start
    table = {}
    for r in rows:
        t = table.setdefault(family(r["stage"]), {"n": 0, "wall": 0.0, "work": 0.0, "before": 0.0, "after": 0.0})
        work = r.get("work_seconds", 0.0)
        t["n"] += 1
        t["wall"] += r["end"] - r["start"]
        t["work"] += work
        t["before"] += r.get("work_start", r["end"]) - r["start"]
        t["after"] += r["end"] - r.get("work_end", r["end"])
    in_stages = sum(t["wall"] for t in table.values())
    work = sum(t["work"] for t in table.values())
    lines = [
        "| stage | runs | wall (s) | work (s) | start-up (s) | wrap-up (s) |",
        "|---|---|---|---|---|---|",
        *(
            f"| {name} | {t['n']} | {t['wall']:.1f} | {t['work']:.1f} | {t['before']:.1f} | {t['after']:.1f} |"
            for name, t in table.items()
        ),
        f"| between stages (DVC, process spawn) | | {total - in_stages:.1f} | | | |",
        f"| **total** | {len(rows)} | **{total:.1f}** | **{work:.1f}** | | |",
        "",
        f"pipeline / work = {total / work:.2f}x" if work else "no stage recorded work",
    ]
    runs = [r for r in rows if "@" in r["stage"] and "work_start" in r]
    gaps = [b["work_start"] - a["work_end"] for a, b in zip(runs, runs[1:])]
    if gaps:
        lines.append(
            f"between two experiment runs' training (end of one to start of the next): {sum(gaps) / len(gaps):.1f} s "
            f"mean ({min(gaps):.1f}-{max(gaps):.1f}) over {len(gaps)} gaps"
        )
    lines.append(
        "work: training, generation, scoring, the report; start-up: process start to the work (interpreter, imports, "
        "data, MLflow); wrap-up: after it (logging, saving)"
    )
    return lines


if __name__ == "__main__":
    if sys.argv[1:] != ["start"]:
        sys.exit("usage: python -m ganaug.timing start  (marks a `make run`'s start in logs/stage-times.jsonl)")
    mark_run_start()
