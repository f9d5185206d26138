"""Warm stage processes: `python -m ganaug.warm dvc repro` runs the command with a server beside it that has
already imported torch, timm, mlflow and the library, and each `python -m ganaug.stages.<stage>` that DVC starts
hands itself to that server, which forks a copy to run it. A stage then starts in a fraction of a second instead
of re-importing for seconds, with its own process, working folder, environment, arguments, standard streams and
exit status, so DVC sees the same stage. Without the server (plain `dvc repro`), or when the stage's environment
differs from the server's in a setting read at import time, the stage runs as a process of its own, as before.

The same design as multiprocessing's forkserver; the server never runs a stage itself, never touches a GPU or a
store before it forks, and stops with the command."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile

ENV = "GANAUG_WARM"  # the server's socket, in the command's environment
CLIENT_START = "GANAUG_WARM_CLIENT_START"  # when the handing-off process started (the stage's own start)
# read when a library is loaded, so a stage whose value differs from the server's must load its own
IMPORT_TIME_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "PYTHONHASHSEED", "PYTHONPATH")
PRELOAD = (
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "torch",
    "timm",
    "albumentations",
    "matplotlib.pyplot",
    "mlflow",
    "mlflow.data.meta_dataset",
    "mlflow.data.dataset_source_registry",
    "ganaug.experiment",
    "ganaug.classify.run",
    "ganaug.tracking",
    "ganaug.sampling.selection",
    "ganaug.stages.experiment",
)


def _environment_key(env) -> dict:
    return {name: env.get(name) for name in IMPORT_TIME_ENV}


def hand_off(argv: list[str]) -> None:
    """In a stage process started as ``python -m <module> args...``: have the warm server run it and exit with its
    status. Returns (the stage then runs here) when there is no server, it does not answer, or it cannot run it."""
    path = os.environ.get(ENV)
    if not path or "-m" not in argv:
        return
    module_args = argv[argv.index("-m") + 1 :]
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(path)
    except OSError:
        return
    env = dict(os.environ)
    env.pop(ENV)  # the stage itself must not hand off again (a torchrun relaunch, a nested dvc call)
    from ganaug.timing import process_start

    env[CLIENT_START] = repr(process_start())
    request = json.dumps({"cwd": os.getcwd(), "env": env, "argv": module_args}).encode()
    try:
        socket.send_fds(conn, [struct.pack("!I", len(request)) + request], [0, 1, 2])
        answer = _receive(conn, 8)
    except OSError:
        return
    if answer is None or answer[:4] != b"pid ":
        return  # refused (another environment): run here
    child = struct.unpack("!I", answer[4:])[0]
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # DVC's Ctrl-C reaches the stage
        signal.signal(sig, lambda signum, _frame: os.kill(child, signum))
    status = _receive(conn, 4)
    os._exit(struct.unpack("!i", status)[0] if status else 1)


def _receive(conn: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        part = conn.recv(n - len(data))
        if not part:
            return None
        data += part
    return data


def _run_child(conn: socket.socket, request: dict, fds: list[int]) -> None:
    """In the forked copy: become the stage process the client would have been, run it, report its status."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the server reaps its children; a stage waits for its own
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    sys.stdin, sys.stdout, sys.stderr = (
        open(0, closefd=False),
        open(1, "w", closefd=False, buffering=1),
        open(2, "w", closefd=False, buffering=1),
    )
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    module, *args = request["argv"]
    sys.argv = [module, *args]
    sys.path[0] = request["cwd"]  # `python -m` puts the working folder first
    sys.modules.pop(module, None)  # as in a fresh `python -m`, the module runs as __main__ only (runpy warns else)
    status = 0
    try:
        import runpy

        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as end:
        status = end.code if isinstance(end.code, int) else (0 if end.code is None else 1)
        if not isinstance(end.code, int | type(None)):
            print(end.code, file=sys.stderr)
    except BaseException:  # what Python prints for an uncaught exception, then its status
        import traceback

        traceback.print_exc()
        status = 1
    try:
        import atexit

        atexit._run_exitfuncs()  # what interpreter exit would run (MLflow ends its active run)
        sys.stdout.flush()
        sys.stderr.flush()
        conn.sendall(struct.pack("!i", status))
    finally:
        os._exit(status)


def serve(path: str) -> None:
    """Import what stages use, then fork one copy per stage request until the command ends."""
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    import threading

    # a Python thread's locks would be copied mid-use into every fork (the idle BLAS and OpenCV worker pools that
    # numpy and cv2 start are re-made in a child, as in every forked DataLoader worker)
    if threading.active_count() > 1:
        names = ", ".join(t.name for t in threading.enumerate())
        print(f"ganaug.warm: threads running after the imports ({names}); stages run on their own", file=sys.stderr)
        return
    environment = _environment_key(os.environ)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped as they end
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    while True:
        conn, _ = listener.accept()
        try:
            header, fds, _, _ = socket.recv_fds(conn, 4, 3)
            size = struct.unpack("!I", header)[0]
            request = json.loads((header[4:] + _receive(conn, size - len(header) + 4)).decode())
        except (OSError, ValueError, TypeError, struct.error):
            conn.close()
            continue
        if _environment_key(request["env"]) != environment or len(fds) != 3:
            conn.sendall(b"refused!")
            for fd in fds:
                os.close(fd)
            conn.close()
            continue
        pid = os.fork()
        if pid == 0:
            listener.close()
            conn.sendall(b"pid " + struct.pack("!I", os.getpid()))
            _run_child(conn, request, fds)
        for fd in fds:
            os.close(fd)
        conn.close()


def run_with_server(command: list[str]) -> int:
    """Run ``command`` with a warm server beside it; the server stops when the command ends."""
    with tempfile.TemporaryDirectory(prefix="ganaug-warm-") as tmp:  # mode 0700: only this user can hand it a stage
        path = os.path.join(tmp, "socket")
        server = subprocess.Popen([sys.executable, "-m", "ganaug.warm", "--serve", path])
        try:
            # the command starts at once; stages that begin before the server is ready run on their own
            env = {**os.environ, ENV: path}
            return subprocess.call(command, env=env)
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve"] and len(argv) == 2:
        serve(argv[1])
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m ganaug.warm <command> [args...]   e.g. python -m ganaug.warm dvc repro")
        return 0 if argv else 2
    return run_with_server(argv)


if __name__ == "__main__":
    sys.exit(main())
