"""Stages as DVC runs them: bad input is one line on stderr and exit status 1, nothing written."""

from __future__ import annotations

import subprocess
import sys


def test_bad_params_stop_a_stage_with_one_line(tmp_path):
    (tmp_path / "params.yaml").write_text("data:\n  name: digits\n  per_class: 0\n")
    proc = subprocess.run([sys.executable, "-m", "ganaug.stages.prepare"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 1
    assert (
        proc.stderr.strip() == "ganaug: error: params.yaml: data.per_class: must be a positive integer or 'all' (got 0)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_prepare_without_fetch_names_the_missing_archive(tmp_path):
    (tmp_path / "params.yaml").write_text("data:\n  name: digits\n")
    proc = subprocess.run([sys.executable, "-m", "ganaug.stages.prepare"], cwd=tmp_path, capture_output=True, text=True)
    assert (
        proc.returncode == 1
        and "data/raw/digits: raw data not found" in proc.stderr
        and len(proc.stderr.strip().splitlines()) == 1
    )
