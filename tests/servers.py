"""Real servers for the tests, each on a free 127.0.0.1 port and stopped afterwards: moto's S3 server (the S3
that DVC's own tests use), an SSH/SFTP server (asyncssh's) with throwaway keys, and `mlflow server` as `make
server` starts it. Each comes with `make install`: no system package is needed."""

from __future__ import annotations

import contextlib
import getpass
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ganaug.ui import answers, free_port

BIN = Path(sys.executable).parent
S3_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def wait_for(check: Callable[[], bool], proc: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            err = proc.stderr.read()[-2000:] if proc.stderr else ""
            pytest.fail(f"{what} did not start: {err}")
        time.sleep(0.3)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def stopping(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def moto_s3(bucket: str) -> Iterator[str]:
    """moto's standalone S3 server with ``bucket`` created; yields its endpoint URL."""
    import boto3

    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    with stopping(proc):
        wait_for(lambda: port_open(port), proc, "moto_server")
        url = f"http://127.0.0.1:{port}"
        boto3.client(
            "s3",
            endpoint_url=url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        ).create_bucket(Bucket=bucket)
        yield url


def s3_keys(url: str, bucket: str, prefix: str = "") -> list[str]:
    import boto3

    s3 = boto3.client(
        "s3", endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


@contextlib.contextmanager
def ssh_server(work: Path) -> Iterator[tuple[str, int, Path]]:
    """A real SSH/SFTP server (asyncssh's, tests/ssh_server.py) for the current user, key login only, with a
    throwaway host key and user key. Yields (user, port, the user's private key file)."""
    import asyncssh

    work.mkdir(parents=True, exist_ok=True)
    host_key, user_key = work / "host_ed25519", work / "user_ed25519"
    for key in (host_key, user_key):
        private = asyncssh.generate_private_key("ssh-ed25519")
        private.write_private_key(str(key))
        private.write_public_key(f"{key}.pub")
    (work / "authorized_keys").write_text((work / "user_ed25519.pub").read_text())
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("ssh_server.py")),
            str(port),
            str(host_key),
            str(work / "authorized_keys"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    with stopping(proc):
        wait_for(lambda: port_open(port), proc, "the SSH server (tests/ssh_server.py)")
        yield getpass.getuser(), port, user_key


@contextlib.contextmanager
def mlflow_server(store: Path, artifacts: str, env: dict[str, str] | None = None, auth: bool = False) -> Iterator[str]:
    """`mlflow server` as `make server` starts it (ganaug.server: SQLite backend, proxied artifacts, logins with
    ``auth``), one worker; yields its URL."""
    import os

    from ganaug.server import server_command

    store.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command, server_env = server_command(
        "127.0.0.1", port, f"sqlite:///{store / 'mlflow.db'}", artifacts, auth, state=store
    )
    proc = subprocess.Popen(
        [*command, "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {}), **server_env},
    )
    url = f"http://127.0.0.1:{port}"
    with stopping(proc):
        wait_for(lambda: answers(url), proc, "mlflow server", timeout=90)
        yield url


@contextlib.contextmanager
def warm_server(socket_path: Path, env: dict[str, str] | None = None) -> Iterator[Path]:
    """`python -m ganaug.warm --serve` (what `make run` starts beside `dvc repro`), until its socket accepts."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ganaug.warm", "--serve", str(socket_path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    with stopping(proc):
        wait_for(socket_path.exists, proc, "the warm server", timeout=120)
        yield socket_path
