"""`make ui`: the saved view of the training runs, its address, and what a real browser shows there."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import mlflow
import pytest

from ganaug import ui
from ganaug.tracking import ensure_experiment, open_experiment
from tests.conftest import TINY, write_params

TAGS = ("mode", "method", "amount", "seed")
HEADERS = {"metrics.`test_accuracy`": "test_accuracy", **{f"tags.`{tag}`": tag for tag in TAGS}}  # id -> text


def test_the_view_shows_test_accuracy_and_the_run_tags_grouped_by_method_and_amount_best_first():
    state = ui.view_state()
    assert state["selectedColumns"] == list(HEADERS)
    assert state["groupBy"]["groupByKeys"] == [{"mode": "tag", "groupByData": k} for k in ("method", "amount")]
    assert (state["orderByKey"], state["orderByAsc"]) == ("metrics.`test_accuracy`", False)
    assert "searchFilter" not in state
    assert ui.view_state("seed1")["searchFilter"] == "tags.`dvc.exp_name` = 'seed1'"
    assert ui.view_id("seed1") != ui.view_id("seed2") != ui.view_id() == "ganaug-runs"

    value = ui.encode_view("a view", state, 1, 2)
    assert ui.decode_view(value) == ("a view", state, 1)
    assert json.loads(value)["state"].startswith("deflate;")  # as MLflow's UI writes it


def test_the_address_names_the_view_and_nothing_the_view_would_be_skipped_for():
    query = parse_qs(urlsplit(ui.view_url("http://127.0.0.1:5000", "7", "ganaug-runs")).fragment.split("?")[1])
    assert query.pop("viewStateShareKey") == ["ganaug-runs"]
    assert query == {"workflowType": ["machine_learning"], "compareRunsMode": ["TABLE"]}  # no sorting, no filter
    fallback = ui.runs_url("http://h:1", "7", "seed1")  # without a view: sorted and filtered by the address
    assert "orderByKey=metrics.%60test_accuracy%60&orderByAsc=false" in fallback
    assert fallback.endswith("searchFilter=tags.%60dvc.exp_name%60%20%3D%20%27seed1%27")


def test_save_view_writes_one_tag_per_view_and_rewrites_it_only_when_it_changed(tmp_path):
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'views.db'}")
    experiment_id = ensure_experiment(client, "ganaug-tests", tmp_path)
    writes = []
    set_tag = client.set_experiment_tag
    client.set_experiment_tag = lambda *args: (writes.append(args[1]), set_tag(*args))

    assert ui.save_view(client, experiment_id) == ui.save_view(client, experiment_id) == "ganaug-runs"
    assert ui.save_view(client, experiment_id, "seed1") == ui.view_id("seed1")
    assert writes == ["mlflow.sharedViewState.ganaug-runs", f"mlflow.sharedViewState.{ui.view_id('seed1')}"]
    tags = client.get_experiment(experiment_id).tags
    assert ui.decode_view(tags["mlflow.sharedViewState.ganaug-runs"])[:2] == (ui.view_name(), ui.view_state())

    set_tag(experiment_id, "mlflow.sharedViewState.ganaug-runs", "not a view")  # e.g. from an older ganaug
    ui.save_view(client, experiment_id)
    assert ui.decode_view(client.get_experiment(experiment_id).tags["mlflow.sharedViewState.ganaug-runs"])[1] == (
        ui.view_state()
    )


def test_a_user_who_may_not_save_the_view_gets_the_runs_page_sorted_by_its_address(capsys):
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import PERMISSION_DENIED

    class ReadOnly:  # a team server's reader: may read the experiment, not tag it
        def get_experiment(self, experiment_id):
            return type("Experiment", (), {"tags": {}})()

        def set_experiment_tag(self, *args):
            raise MlflowException("no", error_code=PERMISSION_DENIED)

    assert ui.page_url(ReadOnly(), "http://h:1", "7", "seed1") == ui.runs_url("http://h:1", "7", "seed1")
    assert capsys.readouterr().err.startswith("ganaug: no saved view (PERMISSION_DENIED on SetExperimentTag)")


def fake_chromium(bin_dir: Path, seconds: int) -> Path:
    """A `chromium` on PATH that records its arguments and the pid of a child it starts, then sleeps."""
    bin_dir.mkdir()
    script = bin_dir / "chromium"
    script.write_text(f'#!/bin/sh\necho "$@" > {bin_dir}/args\nsleep {seconds} &\necho $! > {bin_dir}/child\nwait\n')
    script.chmod(0o755)
    return bin_dir


def test_a_browser_past_its_timeout_ends_in_one_line_that_says_how_to_allow_longer(tmp_path, monkeypatch, capsys):
    write_params(tmp_path, TINY)
    monkeypatch.chdir(tmp_path)
    bin_dir = fake_chromium(tmp_path / "bin", 60)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    started = []
    monkeypatch.setattr(ui, "serve", lambda uri, port: started.append(port) or ui.subprocess.Popen(["sleep", "60"]))
    monkeypatch.setattr(ui, "answers", lambda url: True)  # a server is not what this test is about

    start = time.monotonic()
    assert ui.cli(["--screenshot", str(tmp_path / "runs.png"), "--timeout", "1"]) == 1
    assert time.monotonic() - start < 30
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # the lines above: MLflow creating the store
    assert last.startswith("ganaug: error: chromium did not finish the screenshot of http://127.0.0.1:")
    assert last.endswith("within 1 s; allow longer with --timeout SECONDS") and "Traceback" not in err

    args = (bin_dir / "args").read_text().split()
    assert {"--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000"} <= set(args)
    experiment_id = mlflow.MlflowClient().get_experiment_by_name(TINY["mlflow"]["experiment"]).experiment_id
    assert args[-1] == ui.view_url(f"http://127.0.0.1:{started[0]}", experiment_id, "ganaug-runs")
    child = Path(f"/proc/{(bin_dir / 'child').read_text().strip()}/status")
    deadline = time.monotonic() + 10
    while child.exists() and "State:\tZ" not in child.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not child.exists() or "State:\tZ" in child.read_text()  # the browser's children were ended with it


class ColumnHeaders(HTMLParser):
    """The runs table's column headers in page order: column id -> the text it shows."""

    VOID = {"area", "base", "br", "circle", "col", "embed", "hr", "img", "input", "link", "meta", "path", "wbr"}

    def __init__(self):
        super().__init__()
        self.headers: dict[str, str] = {}
        self.column, self.depth = None, 0

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        attrs = dict(attrs)
        if self.column is None and attrs.get("role") == "columnheader":
            self.column, self.depth = attrs.get("col-id"), 0
            self.headers[self.column] = ""
        self.depth += self.column is not None

    def handle_endtag(self, tag):
        if self.column is not None and tag not in self.VOID:
            self.depth -= 1
            self.column = None if self.depth == 0 else self.column

    def handle_data(self, data):
        if self.column is not None:
            self.headers[self.column] += data.strip()


def column_headers(dom: str) -> dict[str, str]:
    parser = ColumnHeaders()
    parser.feed(dom)
    return parser.headers


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium for the screenshot")
def test_a_real_browser_shows_the_view_columns_and_groups(tmp_path, tiny_params):
    """A real `mlflow ui` on a store with a few runs, a real headless Chromium: the page as an image and as HTML."""
    from ganaug.tracking import tracked_run

    rows = [("real-only", "none", "0", "0", 0.80)] + [
        ("augment", method, amount, seed, 0.81 + 0.02 * i + 0.01 * int(seed))
        for i, (method, amount) in enumerate([("random", "1"), ("cl-sam", "1"), ("cl-sam", "2")])
        for seed in ("0", "1")
    ]
    for mode, method, amount, seed, accuracy in rows:
        tags = {"mode": mode, "method": method, "amount": amount, "seed": seed}
        with tracked_run("train", tiny_params, {}, tags, run_name=f"{mode}/{method}-{amount}-s{seed}"):
            mlflow.log_metric("test_accuracy", accuracy)
    _, client, experiment_id = open_experiment(TINY["mlflow"]["experiment"])
    client.delete_experiment_tag(experiment_id, "mlflow.experimentKind")  # a store from before the kind

    uri, client, experiment_id = open_experiment(TINY["mlflow"]["experiment"])  # what `make ui` starts with
    assert client.get_experiment(experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    port = ui.free_port()
    base = f"http://127.0.0.1:{port}"
    url = ui.page_url(client, base, experiment_id)
    server = ui.serve(uri, port)
    try:
        ui.wait_until_up(base, server)
        out = ui.screenshot(url, tmp_path / "runs.png")
        dom = ui.page_dom(url)
    finally:
        ui.stop(server)

    header = out.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", header[16:24]) == (1600, 1000)
    assert out.stat().st_size > 50_000  # a rendered page, not a blank one (blank: ~10 KB)
    shown = {column: text for column, text in column_headers(dom).items() if column in HEADERS}
    assert list(shown.items()) == list(HEADERS.items())  # those columns, in this order
    assert ui.view_name() in dom  # the Views menu names the view it opened
    groups = re.findall(r">Group: (method: [^<]*)<", dom)  # one row per method and amount, best mean first
    assert groups == ["method: cl-sam, amount: 2", "method: cl-sam, amount: 1", "method: random, amount: 1"] + [
        "method: none, amount: 0"
    ]
