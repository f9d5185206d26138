"""Sharing data through a DVC remote on real servers started here: S3 (moto's server) and SSH (asyncssh's server,
tests/ssh_server.py).
Push, wipe the cache and the outputs, pull: the same bytes come back and `dvc status -c` is clean."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import TINY
from tests.project import commit_all, dvc, new_project
from tests.servers import S3_KEYS, moto_s3, s3_keys, ssh_server

OUTPUTS = ("data/raw/digits", "data/prepared")
STAGES = ("fetch", "prepare")  # the stages run here: push, pull and status name them, the rest never ran


@pytest.fixture(scope="module")
def small_project(tmp_path_factory) -> Path:
    """The project on digits after `dvc repro prepare`: two stages, two DVC outputs."""
    root = new_project(tmp_path_factory.mktemp("shared") / "project", TINY)
    dvc(root, "repro", "prepare")
    commit_all(root, "prepared")
    return root


def files(project: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(project)): p.read_bytes() for o in OUTPUTS for p in (project / o).rglob("*") if p.is_file()
    }


def round_trip(project: Path, remote: str) -> str:
    """Push to ``remote``, wipe the cache and the outputs, pull; assert identical bytes. Returns a timing line."""
    before = files(project)
    start = time.perf_counter()
    dvc(project, "push", "-r", remote, *STAGES)
    pushed = time.perf_counter() - start
    shutil.rmtree(project / ".dvc/cache")
    for o in OUTPUTS:
        shutil.rmtree(project / o)
    start = time.perf_counter()
    dvc(project, "pull", "-r", remote, *STAGES)
    pulled = time.perf_counter() - start
    after = files(project)
    assert after.keys() == before.keys() and all(after[k] == before[k] for k in before)
    assert "in sync" in dvc(project, "status", "-c", "-r", remote, *STAGES)
    assert "up to date" in dvc(project, "status", *STAGES)
    size = sum(len(b) for b in before.values())
    return f"{remote}: {len(before)} files, {size / 1e6:.2f} MB: push {pushed:.1f} s, pull {pulled:.1f} s"


def test_s3_remote_push_wipe_pull_gives_the_same_bytes(small_project, monkeypatch, capsys):
    with moto_s3("team-data") as url:
        dvc(small_project, "remote", "add", "s3r", "s3://team-data/dvc")
        # endpoint and credentials in .dvc/config.local, which git ignores: never in the repository
        dvc(small_project, "remote", "modify", "--local", "s3r", "endpointurl", url)
        dvc(small_project, "remote", "modify", "--local", "s3r", "access_key_id", S3_KEYS["AWS_ACCESS_KEY_ID"])
        dvc(small_project, "remote", "modify", "--local", "s3r", "secret_access_key", S3_KEYS["AWS_SECRET_ACCESS_KEY"])
        assert (
            url not in (small_project / ".dvc/config").read_text()
            and "testing" not in (small_project / ".dvc/config").read_text()
        )
        line = round_trip(small_project, "s3r")
        assert any(key.startswith("dvc/files/md5/") for key in s3_keys(url, "team-data", "dvc/"))
    with capsys.disabled():
        print(f"\n  {line}")


def test_ssh_remote_push_wipe_pull_gives_the_same_bytes(small_project, tmp_path, capsys):
    with ssh_server(tmp_path / "ssh") as (user, port, key):
        store = tmp_path / "ssh-store"
        dvc(small_project, "remote", "add", "sshr", f"ssh://{user}@127.0.0.1:{port}{store}")
        dvc(small_project, "remote", "modify", "--local", "sshr", "keyfile", str(key))
        line = round_trip(small_project, "sshr")
        assert any((store / "files/md5").rglob("*"))  # the data went over SSH into the store's folder
    with capsys.disabled():
        print(f"\n  {line}")
