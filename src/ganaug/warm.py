"""Warm stage processes: `python -m ganaug.warm dvc repro` runs the command with a server beside it that has
already imported torch, timm, mlflow and the library, and each `python -m ganaug.stages.<stage>` that DVC starts
hands itself to that server, which forks a copy to run it. A stage then starts in a fraction of a second instead
of re-importing for seconds, with its own process, working folder, environment, arguments, standard streams and
exit status (a stage killed by a signal reads as killed), so DVC sees the same stage. A stage runs as a process of
its own, as with a plain `dvc repro`, when there is no server, when the server is not ready yet, when its
environment or interpreter differs from the server's in what is read at import time, or when a ganaug source file
changed since the server imported it.

The same design as multiprocessing's forkserver, on Linux only (forking after these imports is unsafe on macOS);
the server never runs a stage itself, never touches a GPU or a store before it forks, and ends with the command."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile

ENV = "GANAUG_WARM"  # the server's socket, in the command's environment
CLIENT_START = "GANAUG_WARM_CLIENT_START"  # when the handing-off process started (the stage's own start)
# environment read when a library loads (thread pools, devices, timm's fused attention, locale, Python itself):
# a stage whose values differ from the server's must load its own
IMPORT_TIME_PREFIXES = (
    "OMP_",
    "MKL_",
    "OPENBLAS_",
    "VECLIB_",
    "CUDA_",
    "TORCH",
    "PYTORCH_",
    "TIMM_",
    "HF_",
    "PYTHON",
    "LC_",
    "LANG",
)
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
    "ganaug.experiment.plan",
    "ganaug.experiment.run",
    "ganaug.classify.run",
    "ganaug.tracking",
    "ganaug.sampling.selection",
    "ganaug.stages.experiment",
)


def _interpreter(env) -> dict:
    """What must be the same in a stage and the server for the server's imports to be the stage's."""
    return {
        "import_env": {k: v for k, v in env.items() if k.startswith(IMPORT_TIME_PREFIXES)},
        "executable": os.path.realpath(sys.executable),
        "flags": repr(sys.flags),
        "warnoptions": list(sys.warnoptions),
    }


def _ganaug_sources() -> dict[str, tuple[int, int]]:
    """(mtime, size) of every ganaug source file this process has loaded: an edit since means stale code."""
    out = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if name.split(".")[0] == "ganaug" and path and os.path.isfile(path):
            stat = os.stat(path)
            out[path] = (stat.st_mtime_ns, stat.st_size)
    return out


def hand_off(argv: list[str]) -> None:
    """In a stage process started as ``python -m <module> args...``: have the warm server run it and exit with its
    status. Returns (the stage then runs here) when there is no server, it does not answer, or it refuses."""
    path = os.environ.get(ENV)
    if not path or "-m" not in argv:
        return
    module_args = argv[argv.index("-m") + 1 :]
    env = dict(os.environ)
    env.pop(ENV)  # the stage must not hand off again (a torchrun relaunch, a nested dvc call)
    os.environ.pop(ENV)  # nor anything it starts if it runs here
    from ganaug.timing import process_start

    env[CLIENT_START] = repr(process_start())
    request = json.dumps({"cwd": os.getcwd(), "env": env, "argv": module_args, **_interpreter(os.environ)}).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(path)
            socket.send_fds(conn, [struct.pack("!I", len(request)) + request], [0, 1, 2])
            answer = _receive(conn, 8)
            if answer is None or answer[:4] != b"pid ":
                return  # refused: run here
            child = struct.unpack("!I", answer[4:])[0]

            def forward(signum, _frame):  # DVC's Ctrl-C and kill reach the stage
                try:
                    os.kill(child, signum)
                except ProcessLookupError:
                    pass

            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, forward)
            status = _receive(conn, 4)
    except OSError:
        return
    code = struct.unpack("!i", status)[0] if status else 1
    if code < 0:  # killed by a signal: say so, and end as a killed process would read to DVC
        print(f"ganaug.warm: the stage was killed by {signal.Signals(-code).name}", file=sys.stderr, flush=True)
        os._exit(128 - code)
    os._exit(code)


def _receive(conn: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        part = conn.recv(n - len(data))
        if not part:
            return None
        data += part
    return data


def _run_child(request: dict, fds: list[int], set_by_imports: dict[str, str]) -> None:
    """In the forked copy: become the stage process the client would have been, run it, exit with its status."""
    status = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        for target, fd in enumerate(fds):  # sys.stdin/stdout/stderr wrap fds 0-2: now the client's
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update({**request["env"], **set_by_imports})
        module, *args = request["argv"]
        sys.argv = [module, *args]
        sys.path[0] = request["cwd"]  # `python -m` puts the working folder first
        sys.modules.pop(module, None)  # as in a fresh `python -m`, the module runs as __main__ only
        import runpy

        status = 0
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        except SystemExit as end:
            status = end.code if isinstance(end.code, int) else (0 if end.code is None else 1)
            if not isinstance(end.code, int | type(None)):
                print(end.code, file=sys.stderr)
        except KeyboardInterrupt:
            import traceback

            traceback.print_exc()
            status = 128 + signal.SIGINT
        except BaseException:  # what Python prints for an uncaught exception, then its status
            import traceback

            traceback.print_exc()
            status = 1
        import atexit
        import threading

        threading._shutdown()  # as interpreter exit does: join non-daemon threads, then the exit handlers
        atexit._run_exitfuncs()  # MLflow ends its active run here
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 (a closed pipe: nothing more can be said)
                pass
        os._exit(status)


def serve(path: str, parent_fd: int | None = None) -> None:
    """Import what stages use, then fork one copy per stage request until ``parent_fd`` closes (the command ended,
    however it ended; without one, until the server is stopped); each child's exit status goes back to its
    client."""
    import importlib
    import threading

    interpreter, before = _interpreter(os.environ), dict(os.environ)
    for name in PRELOAD:
        importlib.import_module(name)
    # what the imports set (torch's inductor cache folder, cv2's library path, ...), as a stage's own imports would
    set_by_imports = {k: v for k, v in os.environ.items() if before.get(k) != v}
    # a Python thread's locks would be copied mid-use into every fork (the idle BLAS and OpenCV worker pools that
    # numpy and cv2 start are remade in a child, as in every forked DataLoader worker)
    if threading.active_count() > 1:
        names = ", ".join(t.name for t in threading.enumerate())
        print(f"ganaug.warm: threads running after the imports ({names}); stages run on their own", file=sys.stderr)
        return
    sources = _ganaug_sources()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".tmp")
    listener.listen(16)
    os.rename(path + ".tmp", path)  # the socket appears only once it accepts
    clients: dict[int, socket.socket] = {}  # child pid -> its client's connection
    wake_read, wake_write = os.pipe()  # a child's end wakes the loop at once
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    watched = [listener, wake_read] + ([parent_fd] if parent_fd is not None else [])
    while True:
        ready, _, _ = select.select(watched, [], [])
        if wake_read in ready:
            os.read(wake_read, 512)
        while clients:  # report each ended child's status to its client
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            if (conn := clients.pop(pid, None)) is not None:
                try:
                    conn.sendall(struct.pack("!i", os.waitstatus_to_exitcode(wait_status)))
                except OSError:
                    pass
                conn.close()
        if parent_fd in ready:
            return  # the command's end: the running stages finish on their own
        if listener not in ready:
            continue
        conn, _ = listener.accept()
        try:
            header, fds, _, _ = socket.recv_fds(conn, 4, 3)
            size = struct.unpack("!I", header)[0]
            request = json.loads(_receive(conn, size).decode())
        except (OSError, ValueError, TypeError, AttributeError, struct.error):
            conn.close()
            continue
        fresh = {k: request.get(k) for k in interpreter} == interpreter and _ganaug_sources() == sources
        if not fresh or len(fds) != 3:
            conn.sendall(b"refused!")
            for fd in fds:
                os.close(fd)
            conn.close()
            continue
        pid = os.fork()
        if pid == 0:
            listener.close()
            signal.set_wakeup_fd(-1)
            for fd in (wake_read, wake_write, *([parent_fd] if parent_fd is not None else [])):
                os.close(fd)
            for other in clients.values():  # another stage's client must see only its own stage's end
                other.close()
            try:
                conn.sendall(b"pid " + struct.pack("!I", os.getpid()))
                conn.close()
            finally:
                _run_child(request, fds, set_by_imports)  # never returns
        for fd in fds:
            os.close(fd)
        clients[pid] = conn


def run_with_server(command: list[str]) -> int:
    """Run ``command`` with a warm server beside it; the server ends when the command does."""
    if not sys.platform.startswith("linux"):
        return _run(command, os.environ)
    with tempfile.TemporaryDirectory(prefix="ganaug-warm-") as tmp:  # mode 0700: only this user can hand it a stage
        path = os.path.join(tmp, "socket")
        read_end, write_end = os.pipe()
        server = subprocess.Popen(
            [sys.executable, "-m", "ganaug.warm", "--serve", path, str(read_end)],
            pass_fds=[read_end],
            start_new_session=True,  # the terminal's Ctrl-C reaches DVC, which stops its stage through the client
        )
        os.close(read_end)
        try:
            # the command starts at once; stages that begin before the server is ready run on their own
            return _run(command, {**os.environ, ENV: path})
        finally:
            os.close(write_end)  # a serving server sees the end of the command and stops
            try:
                server.wait(timeout=2)
            except subprocess.TimeoutExpired:  # still importing: it has no stage to wait for
                server.kill()
                server.wait()


def _run(command: list[str], env) -> int:
    """The command's exit status as a shell reports it; Ctrl-C is the command's to handle, SIGTERM is passed on."""
    try:
        proc = subprocess.Popen(command, env=env)
    except OSError as err:
        print(f"ganaug.warm: cannot run {command[0]}: {err.strerror}", file=sys.stderr)
        return 127
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: proc.send_signal(signum))
    code = proc.wait()
    return 128 - code if code < 0 else code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve"] and len(argv) in (2, 3):
        serve(argv[1], int(argv[2]) if len(argv) == 3 else None)
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m ganaug.warm <command> [args...]   e.g. python -m ganaug.warm dvc repro")
        return 0 if argv else 2
    return run_with_server(argv)


if __name__ == "__main__":
    sys.exit(main())
