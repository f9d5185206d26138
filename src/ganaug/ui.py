"""`make ui`: MLflow's UI on the project's store, opened on a saved view of the training runs.

    python -m ganaug.ui                          # serve, and print the address of the view
    python -m ganaug.ui --exp seed1              # ... a view of DVC experiment seed1's stage runs only
    python -m ganaug.ui --screenshot runs.png    # serve on a free port, save what a browser shows, stop
    python -m ganaug.ui --screenshot runs.png --timeout 600    # ... on a busy machine (default 180 s)

The view is one of MLflow's saved runs-table views (Views in the runs page's toolbar): columns metric
test_accuracy and tags mode, method, amount (a row's id) and seed, rows grouped by method and amount, best test
accuracy first. It lives on the MLflow experiment, so the printed address opens the same table for anyone who can
read the experiment. Each DVC experiment is one parent run; its stage runs are nested under it.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zlib
from pathlib import Path
from urllib.parse import quote, urlencode

from ganaug.errors import GanaugError
from ganaug.params import load_params
from ganaug.tracking import open_experiment, quoted

# MLflow's runs page (3.15+) keeps each saved view in one experiment tag: this prefix plus the view's id
VIEW_TAG_PREFIX = "mlflow.sharedViewState."
METRIC = "test_accuracy"
TAGS = ("mode", "method", "amount", "seed")  # tracked_run's tags on every training run
GROUP_BY = ("method", "amount")
COLUMNS = [f"metrics.`{METRIC}`", *(f"tags.`{tag}`" for tag in TAGS)]  # the UI's column ids
RUN_NAME = "attributes.`Run Name`"  # its group rows read "Group: method: cl-sam, amount: 2"
# pixels: a group's label and its mean accuracy (all of a float's digits) in full, the short tags narrower
WIDTHS = {RUN_NAME: 280, COLUMNS[0]: 150, **dict(zip(COLUMNS[1:], (80, 90, 60, 60)))}
TIMEOUT = 180  # seconds; a busy 2-core machine needs about a minute for the server and the browser together
BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--hide-scrollbars")


def view_state(exp_name: str | None = None) -> dict:
    """What the view shows, in the fields of MLflow's runs page (its search facets and UI state)."""
    state = {
        "orderByKey": f"metrics.`{METRIC}`",
        "orderByAsc": False,
        "selectedColumns": list(COLUMNS),
        "columnOrder": [RUN_NAME, *COLUMNS],
        "columnWidths": dict(WIDTHS),
        "groupBy": {
            "aggregateFunction": "average",
            "groupByKeys": [{"mode": "tag", "groupByData": tag} for tag in GROUP_BY],
        },
    }
    if exp_name:
        state["searchFilter"] = f"tags.`dvc.exp_name` = {quoted(exp_name)}"
    return state


def view_id(exp_name: str | None = None) -> str:
    """A fixed id per DVC experiment (and one for all runs), so each `make ui` updates its view, never adds one."""
    return f"ganaug-{hashlib.sha1(exp_name.encode()).hexdigest()[:12]}" if exp_name else "ganaug-runs"


def view_name(exp_name: str | None = None) -> str:
    return f"ganaug: {exp_name}" if exp_name else "ganaug: test accuracy by method and amount"


def encode_view(name: str, state: dict, created_ms: int, updated_ms: int) -> str:
    """The tag value MLflow's UI writes for a saved view: a JSON envelope with the state deflated, base64."""
    packed = base64.b64encode(zlib.compress(json.dumps(state, separators=(",", ":")).encode())).decode()
    envelope = {"name": name, "createdAt": created_ms, "updatedAt": updated_ms, "state": f"deflate;{packed}"}
    return json.dumps(envelope, separators=(",", ":"))


def decode_view(value: str) -> tuple[str, dict, int]:
    """Name, state and creation time of a saved view's tag value."""
    envelope = json.loads(value)
    state = envelope["state"]
    if state.startswith("deflate;"):  # the UI may also store it as plain JSON
        state = zlib.decompress(base64.b64decode(state.removeprefix("deflate;")))
    return envelope["name"], json.loads(state), int(envelope["createdAt"])


def save_view(client, experiment_id: str, exp_name: str | None = None) -> str:
    """Create or update the ganaug view on the experiment, through MLflow's SetExperimentTag; its id."""
    key = VIEW_TAG_PREFIX + view_id(exp_name)
    name, state = view_name(exp_name), view_state(exp_name)
    now = int(time.time() * 1000)
    created = now
    if stored := client.get_experiment(experiment_id).tags.get(key):
        try:
            old_name, old_state, created = decode_view(stored)
        except (ValueError, KeyError, TypeError, AttributeError, zlib.error):  # unreadable: rewritten below
            old_name, old_state = None, None
        if (old_name, old_state) == (name, state):  # a reader of a shared server needs no write permission
            return view_id(exp_name)
    client.set_experiment_tag(experiment_id, key, encode_view(name, state, created, now))
    return view_id(exp_name)


def view_url(base: str, experiment_id: str, view: str) -> str:
    """The runs page on saved view ``view``, in the model-training layout, as a table.

    Only the view may carry the sorting and filter: MLflow skips a view whose URL has them already."""
    query = {"viewStateShareKey": view, "workflowType": "machine_learning", "compareRunsMode": "TABLE"}
    return f"{base}/#/experiments/{experiment_id}/runs?{urlencode(query, quote_via=quote)}"


def runs_url(base: str, experiment_id: str, exp_name: str | None = None) -> str:
    """The runs page without a saved view (a reader of a shared server who may not save one): sorted only."""
    query = {"orderByKey": f"metrics.`{METRIC}`", "orderByAsc": "false", "workflowType": "machine_learning"}
    if exp_name:
        query["searchFilter"] = f"tags.`dvc.exp_name` = {quoted(exp_name)}"
    return f"{base}/#/experiments/{experiment_id}/runs?{urlencode(query, quote_via=quote)}"


def page_url(client, base: str, experiment_id: str, exp_name: str | None = None) -> str:
    """The address to open: the saved view, or the sorted runs page where the store refuses to save it."""
    from mlflow.exceptions import MlflowException

    try:
        return view_url(base, experiment_id, save_view(client, experiment_id, exp_name))
    except MlflowException as error:
        if error.error_code not in ("PERMISSION_DENIED", "UNAUTHENTICATED"):
            raise
        print(f"ganaug: no saved view ({error.error_code} on SetExperimentTag): the runs page, sorted", file=sys.stderr)
        return runs_url(base, experiment_id, exp_name)


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


def wait_until_up(url: str, server: subprocess.Popen, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise GanaugError(f"mlflow ui exited with code {server.returncode} before it answered at {url}")
        if answers(url):
            return
        time.sleep(0.5)
    raise GanaugError(f"mlflow ui did not answer at {url} within {timeout:g} s; allow longer with --timeout SECONDS")


def browser() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise GanaugError("chromium not found: install the Debian package `chromium` for --screenshot")
    return found


def run_browser(url: str, flags: list[str], timeout: float, what: str) -> str:
    """Headless Chromium's stdout for ``url``; its whole process group is ended on timeout (renderers too)."""
    with subprocess.Popen(
        [browser(), *BROWSER_FLAGS, *flags, url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise GanaugError(
                f"chromium did not finish {what} of {url} within {timeout:g} s; allow longer with --timeout SECONDS"
            ) from None
    if proc.returncode != 0:
        last = (err.strip().splitlines() or ["no output"])[-1]
        raise GanaugError(f"chromium exited with code {proc.returncode} on {what} of {url}: {last}")
    return out


def screenshot(url: str, out: Path, size: tuple[int, int] = (1600, 1000), timeout: float = TIMEOUT) -> Path:
    """What headless Chromium shows at ``url``, as a PNG (Debian package `chromium`)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    # virtual time: the page's requests and rendering run to completion, whatever the machine's load
    flags = [f"--window-size={size[0]},{size[1]}", "--virtual-time-budget=15000", f"--screenshot={out.resolve()}"]
    run_browser(url, flags, timeout, "the screenshot")
    return out


def page_dom(url: str, size: tuple[int, int] = (1600, 1000), timeout: float = TIMEOUT) -> str:
    """The page at ``url`` as HTML once its scripts have rendered it (what --screenshot saves, as markup)."""
    flags = [f"--window-size={size[0]},{size[1]}", "--virtual-time-budget=15000", "--dump-dom"]
    return run_browser(url, flags, timeout, "the page")


def serve(uri: str, port: int, host: str = "127.0.0.1") -> subprocess.Popen:
    mlflow = Path(sys.executable).with_name("mlflow")
    return subprocess.Popen([str(mlflow), "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)])


def stop(server: subprocess.Popen) -> None:
    server.terminate()  # mlflow forwards it to its uvicorn child
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--exp", help="show only this DVC experiment's stage runs")
    parser.add_argument("--screenshot", type=Path, help="save the runs page as this PNG, then stop")
    parser.add_argument(
        "--timeout",
        type=float,
        default=TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for the server to answer and for the browser to render (default {TIMEOUT})",
    )
    args = parser.parse_args(argv)

    uri, client, experiment_id = open_experiment(load_params().mlflow.experiment)  # marks it as model training
    if uri.startswith(("http://", "https://")):  # a team's server (make server) already serves the UI
        print(page_url(client, uri.rstrip("/"), experiment_id, args.exp))
        return 0
    port = free_port() if args.screenshot else args.port
    base = f"http://127.0.0.1:{port}"
    url = page_url(client, base, experiment_id, args.exp)
    server = serve(uri, port)
    try:
        wait_until_up(base, server, args.timeout)
        if args.screenshot:
            print(f"{screenshot(url, args.screenshot, timeout=args.timeout)}: {url}")
            return 0
        print(f"\nThe training runs: {url}\n", flush=True)
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop(server)


def cli(argv: list[str] | None = None) -> int:
    try:
        return main(argv)
    except GanaugError as error:  # one line, never a traceback
        print(f"ganaug: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(cli())
