"""`make ui`: MLflow's UI on the project's store, opened on the training runs.

    python -m ganaug.ui                          # serve, and print the runs page's address
    python -m ganaug.ui --exp seed1              # ... filtered to DVC experiment seed1's stage runs
    python -m ganaug.ui --screenshot runs.png    # serve on a free port, save what a browser shows, stop

The runs page is sorted by test accuracy. Each DVC experiment is one parent run; its stage runs are
nested under it (expand it, or filter on ``tags.`dvc.exp_name```). To show the numbers as table
columns, pick them under Columns: metric test_accuracy, tags mode, sampler, ratio and seed. The
browser remembers that choice.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlencode

from ganaug.errors import GanaugError
from ganaug.params import load_params
from ganaug.tracking import open_experiment, quoted


def runs_url(base: str, experiment_id: str, exp_name: str | None = None) -> str:
    """The runs page of one experiment, best test accuracy first; only ``exp_name``'s runs if given."""
    query = {"orderByKey": "metrics.`test_accuracy`", "orderByAsc": "false"}
    if exp_name:
        query["searchFilter"] = f"tags.`dvc.exp_name` = {quoted(exp_name)}"
    return f"{base}/#/experiments/{experiment_id}/runs?{urlencode(query, quote_via=quote)}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str) -> bool:
    """Whether the MLflow server at ``url`` answers its health check."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def wait_until_up(url: str, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise GanaugError(f"mlflow ui exited with code {server.returncode} before it answered at {url}")
        if answers(url):
            return
        time.sleep(0.5)
    raise GanaugError(f"mlflow ui did not answer at {url} within {timeout:.0f} s")


def screenshot(url: str, out: Path, size: tuple[int, int] = (1600, 1000)) -> Path:
    """What headless Chromium shows at ``url``, as a PNG (Debian package `chromium`)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise GanaugError("chromium not found: install the Debian package `chromium` for --screenshot")
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={size[0]},{size[1]}",
            "--virtual-time-budget=15000",
            f"--screenshot={out.resolve()}",
            url,
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    return out


def serve(uri: str, port: int, host: str = "127.0.0.1") -> subprocess.Popen:
    mlflow = Path(sys.executable).with_name("mlflow")
    return subprocess.Popen([str(mlflow), "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--exp", help="show only this DVC experiment's stage runs")
    parser.add_argument("--screenshot", type=Path, help="save the runs page as this PNG, then stop")
    args = parser.parse_args(argv)

    uri, _, experiment_id = open_experiment(load_params().mlflow.experiment)  # marks it as model training
    if uri.startswith(("http://", "https://")):  # a team's server (make server) already serves the UI
        print(runs_url(uri.rstrip("/"), experiment_id, args.exp))
        return 0
    port = free_port() if args.screenshot else args.port
    base = f"http://127.0.0.1:{port}"
    server = serve(uri, port)
    try:
        wait_until_up(base, server)
        url = runs_url(base, experiment_id, args.exp)
        if args.screenshot:
            print(f"{screenshot(url, args.screenshot)}: {url}")
            return 0
        print(f"\nThe training runs: {url}\n", flush=True)
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        server.terminate()  # mlflow forwards it to its uvicorn child
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except GanaugError as error:
        sys.exit(f"error: {error}")
