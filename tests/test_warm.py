"""ganaug.warm: stages handed to a warm server run in a forked copy of it, as themselves; a stage whose
import-time environment differs from the server's, or with no server to answer, runs as a process of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ganaug.experiment import plan
from tests.conftest import write_params
from tests.servers import warm_server


@pytest.fixture()
def project(tmp_path):
    write_params(tmp_path, {"experiments": {"samplers": ["random", "rl"]}})
    return tmp_path


def plan_lines(project, env) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "ganaug.stages.plan"], cwd=project, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    expected = "plan: rl_policy for rl; projection not needed; pseudo_label not needed; retrieval not needed"
    assert proc.stdout.strip() == expected
    assert json.loads((project / "data/plan/rl_policy.json").read_text())["needed_by"] == ["rl"]
    return [json.loads(line) for line in (project / "logs/stage-times.jsonl").read_text().splitlines()]


def test_a_stage_forks_from_the_server_only_when_its_import_time_environment_matches(project):
    server_env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with warm_server(project / "warm.sock", server_env) as sock:
        client = {**server_env, "GANAUG_WARM": str(sock)}
        assert plan_lines(project, client)[-1].get("warm")  # forked from the server: same output, same line
        other = {**client, "OMP_NUM_THREADS": "2"}  # read when torch loads: the server's copy would not honour it
        assert not plan_lines(project, other)[-1].get("warm")
        # a ganaug source edited since the server imported it: the stage loads the new code itself
        source = Path(plan.__file__)
        stat = source.stat()
        try:
            os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
            assert not plan_lines(project, client)[-1].get("warm")
        finally:
            os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        assert plan_lines(project, client)[-1].get("warm")
    # the server gone: the stage runs on its own
    assert not plan_lines(project, {**server_env, "GANAUG_WARM": str(sock)})[-1].get("warm")
