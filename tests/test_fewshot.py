"""The few-shot protocol (DA-Fusion: 1, 2, 4, 8 and 16 labelled images per class): prepare at 1 image per class, a
classifier trained on 10 images, and the low-data sweep's table at those sizes (on summaries made here: no
training). An end-to-end sweep is the slow tier's test_low_data_sweep_* (test_pipeline): a few-shot one would add
six pipelines, minutes, not seconds."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ganaug import paths
from ganaug.data.prepare import prepare
from ganaug.data.sources import digits, folder
from ganaug.data.splits import split_indices
from ganaug.data.store import load_split
from ganaug.errors import GanaugError
from tests.conftest import TINY, params_with, write_params

ONE_SHOT = {**TINY, "data": {**TINY["data"], "per_class": 1, "val_per_class": 1}}
SPLITS = ("train", "val", "test")


def test_prepare_keeps_one_image_per_class_and_draws_validation_from_the_rest(tmp_path):
    params = params_with({**ONE_SHOT, "data": {**ONE_SHOT["data"], "unlabelled": "rest"}}).data
    digits.fetch(tmp_path / "raw", params)
    summary = prepare(tmp_path / "raw", tmp_path / "one", params)
    assert set(summary["counts"]["train"].values()) == set(summary["counts"]["val"].values()) == {1}
    assert set(summary["counts"]["test"].values()) == {50}
    ids = {s: set(load_split(tmp_path / "one" / f"{s}.npz").ids) for s in (*SPLITS, "unlabelled")}
    assert sum(len(v) for v in ids.values()) == len(set().union(*ids.values())) == 1797  # disjoint, nothing lost
    assert summary["unlabelled"]["images"] == 1797 - 10 - 10 - 500  # the rest: neither train, val nor test

    prepare(tmp_path / "raw", tmp_path / "again", params)  # deterministic: the same bytes
    for s in (*SPLITS, "unlabelled"):
        assert (tmp_path / "one" / f"{s}.npz").read_bytes() == (tmp_path / "again" / f"{s}.npz").read_bytes()
    # every size of a sweep is tested on the same images (and validates on the same ones, val drawn before train)
    bigger = params_with({**ONE_SHOT, "data": {**ONE_SHOT["data"], "per_class": 16}}).data
    prepare(tmp_path / "raw", tmp_path / "sixteen", bigger)
    assert set(load_split(tmp_path / "sixteen" / "test.npz").ids) == ids["test"]
    assert set(load_split(tmp_path / "sixteen" / "val.npz").ids) == ids["val"]


def write_digits(root, per_class: int, start: int = 0) -> None:
    """scikit-learn's digits as ``root/<class>/<i>.png``, images start .. start + per_class of each class."""
    from sklearn.datasets import load_digits

    d = load_digits()
    for c in range(10):
        (root / str(c)).mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(d.target == c)[start : start + per_class]:
            Image.fromarray(np.rint(d.images[i] * 255 / 16).astype(np.uint8), "L").save(root / str(c) / f"{i}.png")


def prepare_folder(tmp_path, root, **data):
    params = params_with({"data": {"name": "folder", "root": str(root), "image_size": 16, **data}}).data
    folder.fetch(tmp_path / "raw" / root.name, params)
    return prepare(tmp_path / "raw" / root.name, tmp_path / "prepared" / root.name, params)


def test_a_class_with_nothing_left_for_validation_is_refused_in_one_line(tmp_path):
    one = tmp_path / "one"  # 1 training image per class, a test split given beside it
    write_digits(one / "train", 1)
    write_digits(one / "test", 3, start=1)
    with pytest.raises(GanaugError) as err:
        prepare_folder(tmp_path, one, per_class=1, val_per_class=1)
    message = str(err.value)
    assert "\n" not in message and message.startswith("data.val_per_class: class '0' has 1 images left")
    assert "data.per_class (1) + data.val_per_class (1) ask for 2" in message
    assert "validation is drawn from what the training images leave (0)" in message

    two = tmp_path / "two"  # one more image per class: it becomes the validation image
    write_digits(two / "train", 2)
    write_digits(two / "test", 3, start=2)
    summary = prepare_folder(tmp_path, two, per_class=1, val_per_class=1)
    assert set(summary["counts"]["train"].values()) == set(summary["counts"]["val"].values()) == {1}

    plain = tmp_path / "plain"  # no test split given: 1 image cannot be split into test and train
    write_digits(plain, 1)
    with pytest.raises(GanaugError, match=r"^data.test_per_class: class '0' has 1 images; .* none to train on") as err:
        prepare_folder(tmp_path, plain, per_class=1, val_per_class=1)
    assert "\n" not in str(err.value)


def test_a_validation_fraction_is_refused_with_its_count():
    labels = np.repeat(np.arange(4), 4)  # 1 test image per class leaves 3: 3 for training leaves none for val
    params = params_with({"data": {"per_class": 3, "val_per_class": 0.5, "test_per_class": 1}}).data
    with pytest.raises(GanaugError, match=r"data.per_class \(3\) \+ data.val_per_class \(0.5 of them: 2\) ask for 5"):
        split_indices(labels, None, ["a", "b", "c", "d"], params)


def test_a_classifier_trains_on_one_image_per_class_with_full_batches(tmp_path, monkeypatch):
    """10 training images and a batch of 32: every batch is full (permutations chained, so BatchNorm never sees a
    batch of one), every image is in it, and 20 steps on them beat chance on the test set."""
    import torch

    from ganaug.classify.normalize import Normalizer
    from ganaug.classify.train import Phase, phase_batches
    from ganaug.distributed import Ranks
    from ganaug.experiment.plan import RunSpec
    from ganaug.experiment.run import run_experiment

    monkeypatch.chdir(tmp_path)
    params = params_with({**ONE_SHOT, "experiments": {**TINY["experiments"], "epochs": 20}})
    digits.fetch(paths.RAW / "digits", params.data)
    prepare(paths.RAW / "digits", paths.PREPARED, params.data)
    train = load_split(paths.PREPARED / "train.npz")
    assert len(train) == 10 < params.train.batch_size

    phase = Phase("train", train, params.train)
    batches = list(phase_batches(phase, 1, Normalizer.fit(train.images), Ranks.here(torch.device("cpu"))))
    assert len(batches) == params.train.epochs
    assert all(x.shape[0] == params.train.batch_size and len(set(idx)) == 10 for x, _, idx in batches)

    metrics = run_experiment(RunSpec("baseline", "real", "0", 0), params, track=False)
    assert metrics["n_real"] == 10 and metrics["steps"] == 20  # 1 step an epoch
    assert metrics["test_accuracy"] > 0.2  # chance: 0.1 (measured 0.35)


REAL_ONLY, PSEUDO, RETRIEVAL, CL_SAM = (
    "baseline/real/0",
    "augment/pseudo-label/1",
    "augment/retrieval/1",
    "augment/cl-sam/1",
)


def summary(accuracies: dict[str, list[float]], steps: int = 180) -> dict:
    """An experiment's reports/summary.json rows, in the report's order (baseline, then augment by sampler name)."""
    rows = {}
    for row in (REAL_ONLY, CL_SAM, PSEUDO, RETRIEVAL):
        if row in accuracies:
            mode, method, amount = row.split("/")
            seeds = {str(s): a for s, a in enumerate(accuracies[row])}
            rows[row] = {"mode": mode, "method": method, "amount": amount, "seeds": seeds, "steps": steps}
    return {"rows": rows, "comparisons": []}  # the sweep pairs rows itself: one Holm family for its table


def few_shot_summaries() -> dict[int, dict]:
    """Sizes 1..16 and the full 100, keyed out of order; real-only's seeds spread widely, every other row sits a
    fixed offset above it per seed (what pairing over seeds sees); retrieval did not run at 16."""
    out = {}
    for n in (16, 2, 100, 1, 8, 4):
        real = [0.30 + 0.004 * n + s for s in (0.0, 0.05, 0.10)]
        offsets = {PSEUDO: (0.05, 0.05, 0.05), RETRIEVAL: (0.07, 0.09, 0.07), CL_SAM: (0.02, 0.04, 0.02)}
        rows = {REAL_ONLY: real, **{r: [a + d for a, d in zip(real, o)] for r, o in offsets.items()}}
        if n == 16:
            del rows[RETRIEVAL]
        out[n] = summary(rows)
    return out


def test_the_few_shot_table_pairs_each_size_with_real_only_pseudo_label_and_retrieval(tmp_path):
    from ganaug.sweeps.lowdata import build_report

    table = build_report(few_shot_summaries(), tmp_path)
    assert table["per_class"].drop_duplicates().tolist() == [1, 2, 4, 8, 16, 100]  # by number, not as text
    ids = table.groupby("per_class", sort=False)["id"].apply(list).to_dict()
    assert ids[1] == [REAL_ONLY, PSEUDO, RETRIEVAL, CL_SAM]  # real-only, the references, then the rest
    assert ids[16] == [REAL_ONLY, PSEUDO, CL_SAM]  # retrieval did not run at 16: left out, not faked
    assert table.groupby("id")["per_class"].apply(list)[RETRIEVAL] == [1, 2, 4, 8, 100]

    at = table.set_index(["per_class", "id"])
    assert at.loc[(4, CL_SAM), "vs real-only"] == pytest.approx(0.08 / 3)  # paired: mean of +2, +4, +2 points
    assert at.loc[(4, CL_SAM), "vs pseudo-label"] == pytest.approx(-0.07 / 3)
    assert at.loc[(4, CL_SAM), "vs retrieval"] == pytest.approx(-0.05)
    assert at.loc[(4, RETRIEVAL), "vs pseudo-label"] == pytest.approx(0.08 / 3)
    assert pd.isna(at.loc[(4, PSEUDO), "vs retrieval"]) and pd.isna(at.loc[(4, PSEUDO), "vs pseudo-label"])
    assert pd.isna(at.loc[(4, REAL_ONLY), "vs real-only"])
    assert pd.isna(at.loc[(16, CL_SAM), "vs retrieval"]) and pd.isna(at.loc[(16, CL_SAM), "verdict retrieval"])
    # paired over seeds, the offsets are clear although real-only's seeds spread by 10 points; Holm over the table
    assert at.loc[(1, CL_SAM), "verdict retrieval"] == "worse" and at.loc[(1, PSEUDO), "verdict real-only"] == "better"
    tested = pd.concat([table[f"p {r}"] for r in ("real-only", "pseudo-label", "retrieval")]).notna().sum()
    assert tested == 5 * (3 + 2 + 1) + (2 + 1)  # 16 without retrieval: 2 rows vs real-only, cl-sam vs pseudo-label
    for ref in ("real-only", "pseudo-label", "retrieval"):
        assert (table[f"p_holm {ref}"].dropna() >= table[f"p {ref}"].dropna()).all()

    md = (tmp_path / "lowdata.md").read_text()
    assert "| vs real-only, same size | vs pseudo-label, same size | vs retrieval, same size |" in md
    row16 = next(line for line in md.splitlines() if line.startswith("| 16 | cl-sam 1x |"))
    assert row16.endswith("| — | -30.93 [-42.42, -19.45] |")  # no retrieval at 16; vs real-only at 100/class (Welch)
    assert (
        "| 1 | pseudo-label 1x | 180 | 3 | 40.40 ± 5.00 | [27.98, 52.82] | +5.00 [+5.00, +5.00] better | — | — |" in md
    )


def test_a_few_shot_report_reads_one_experiment_per_size_and_the_full_size(tmp_path, monkeypatch):
    """`python -m ganaug.sweep lowdata --per-class 1 2 4 8 16 --report-only -S ...` (make run-fewshot's sweep): each
    size's experiment by name, plus data.per_class's, the reference for data saved."""
    import ganaug.data.store
    from ganaug.sweeps import lowdata

    monkeypatch.chdir(tmp_path)
    summaries, read = few_shot_summaries(), []
    extra = ["data.unlabelled=rest", "experiments.samplers=[pseudo-label,retrieval,cl-sam]"]

    def read_summary(name):
        read.append(name)
        return summaries[int(name.split("-")[1])]

    monkeypatch.setattr(lowdata, "read_summary", read_summary)
    monkeypatch.setattr(
        ganaug.data.store, "load_classes", lambda path: {"classes": ["a"], "counts": {"train": {"a": 100}}}
    )
    write_params(tmp_path)  # the project's params: data.per_class 100
    args = argparse.Namespace(per_class=[16, 8, 4, 2, 1], overrides=extra, report_only=True)
    out = lowdata.run(args)
    assert read == [lowdata.experiment_name(n, extra, "lowdata") for n in (1, 2, 4, 8, 16, 100)]
    assert out.is_file() and pd.read_csv("reports/sweep/lowdata.csv")["per_class"].iloc[-1] == 100


def test_a_long_tail_that_one_image_per_class_flattens_is_refused():
    labels = np.repeat(np.arange(4), 20)
    params = params_with({"data": {"per_class": 1, "val_per_class": 1, "test_per_class": 5, "imbalance": 10}}).data
    with pytest.raises(GanaugError, match=r"^data.imbalance: at 1 training images per class .* every class gets 1, so"):
        split_indices(labels, None, ["a", "b", "c", "d"], params)
    params = params_with({"data": {"per_class": 4, "val_per_class": 1, "test_per_class": 5, "imbalance": 10}}).data
    parts = split_indices(labels, None, ["a", "b", "c", "d"], params)
    assert np.bincount(labels[parts["train"]]).tolist() == [4, 1, 1, 1]  # 4 x 10^(-k/3), at least 1: still a tail
