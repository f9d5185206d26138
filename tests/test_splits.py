"""Splits, the low-data regime, imbalance, resizing and the prepared-array store."""

from __future__ import annotations

import numpy as np
import pytest

from ganaug.data.prepare import prepare, resize
from ganaug.data.sources import digits
from ganaug.data.splits import imbalance_fractions, split_indices
from ganaug.data.store import Split, load_split, save_split
from ganaug.errors import GanaugError
from tests.conftest import params_with

CLASSES = [f"c{i}" for i in range(4)]


def data_params(**kw):
    return params_with({"data": kw}).data


def labels_with(per_class=(50, 50, 50, 50)):
    return np.repeat(np.arange(len(per_class)), per_class)


def test_splits_are_disjoint_stratified_and_seeded():
    labels = labels_with()
    params = data_params(per_class=20, val_per_class=5, test_per_class=10, seed=3)
    parts = split_indices(labels, None, CLASSES, params)
    assert [np.bincount(labels[parts[s]]).tolist() for s in ("train", "val", "test")] == [[20] * 4, [5] * 4, [10] * 4]
    assert len(np.intersect1d(parts["train"], parts["val"])) == len(np.intersect1d(parts["train"], parts["test"])) == 0
    again = split_indices(labels, None, CLASSES, params)
    assert all(np.array_equal(parts[s], again[s]) for s in parts)
    other = split_indices(labels, None, CLASSES, data_params(per_class=20, val_per_class=5, test_per_class=10, seed=4))
    assert not np.array_equal(parts["train"], other["train"])


def test_a_smaller_per_class_is_drawn_from_the_same_test_split():
    labels = labels_with()
    small = split_indices(labels, None, CLASSES, data_params(per_class=5, val_per_class=5, test_per_class=10))
    big = split_indices(labels, None, CLASSES, data_params(per_class=30, val_per_class=5, test_per_class=10))
    assert np.array_equal(small["test"], big["test"]) and np.array_equal(small["val"], big["val"])


def test_official_test_split_is_kept_and_all_uses_the_rest():
    labels = labels_with()
    is_test = np.zeros(len(labels), bool)
    is_test[::10] = True
    parts = split_indices(labels, is_test, CLASSES, data_params(per_class="all", val_per_class=5))
    assert np.array_equal(parts["test"], np.flatnonzero(is_test))
    assert len(parts["train"]) == len(labels) - is_test.sum() - 20


def test_imbalance_profiles():
    assert np.allclose(imbalance_fractions(10, 3), [1, 10**-0.5, 0.1])
    labels = labels_with()
    parts = split_indices(
        labels,
        None,
        CLASSES,
        data_params(per_class=20, val_per_class=5, test_per_class=10, imbalance=[1, 0.5, 0.25, 0.1]),
    )
    assert np.bincount(labels[parts["train"]]).tolist() == [20, 10, 5, 2]
    with pytest.raises(GanaugError, match="3 fractions given, the dataset has 4 classes"):
        split_indices(labels, None, CLASSES, data_params(imbalance=[1, 1, 1], val_per_class=5, test_per_class=10))


def test_a_class_too_small_for_per_class_is_named():
    labels = labels_with((50, 50, 30, 50))
    with pytest.raises(GanaugError) as err:
        split_indices(labels, None, CLASSES, data_params(per_class=20, val_per_class=5, test_per_class=10))
    assert "class 'c2' has 20 images left after the test split" in str(err.value)
    assert "data.per_class (20) + data.val_per_class (5) ask for 25" in str(err.value)


def test_resize_and_channel_conversion():
    images = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 1), dtype=np.uint8)
    out = resize(images, 16, 3)
    assert out.shape == (5, 16, 16, 3) and out.dtype == np.uint8
    flat = np.full((2, 8, 8, 1), 77, np.uint8)
    assert (resize(flat, 20, None) == 77).all()


def test_store_round_trip_is_byte_deterministic(tmp_path):
    split = Split(np.arange(2 * 4 * 4 * 1, dtype=np.uint8).reshape(2, 4, 4, 1), np.array([0, 1]), np.array(["a", "b"]))
    save_split(tmp_path / "a.npz", split)
    save_split(tmp_path / "b.npz", split)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    back = load_split(tmp_path / "a.npz")
    assert np.array_equal(back.images, split.images) and back.ids.tolist() == ["a", "b"]


def test_corrupt_or_missing_split_is_named(tmp_path):
    with pytest.raises(GanaugError, match="prepared split not found"):
        load_split(tmp_path / "train.npz")
    (tmp_path / "train.npz").write_bytes(b"not a zip")
    with pytest.raises(GanaugError, match="train.npz: not a readable prepared split"):
        load_split(tmp_path / "train.npz")


def test_prepare_on_digits_writes_the_documented_outputs(tmp_path, tiny_params):
    digits.fetch(tmp_path / "raw", tiny_params.data)
    summary = prepare(tmp_path / "raw", tmp_path / "prepared", tiny_params.data)
    train = load_split(tmp_path / "prepared" / "train.npz")
    assert train.images.shape == (300, 16, 16, 1)
    assert summary["counts"]["test"]["3"] == 50 and summary["official_test_split"] is False
    assert (tmp_path / "prepared" / "classes.json").is_file()


def test_fractions_fit_any_folder_and_keep_its_imbalance():
    labels = labels_with((991, 1000, 40, 300))  # a folder of ~1,000 images per class, one class small
    params = data_params(per_class="all", test_per_class=0.2, val_per_class=0.1)
    parts = split_indices(labels, None, CLASSES, params)
    counts = {s: np.bincount(labels[parts[s]]).tolist() for s in parts}
    assert counts["test"] == [198, 200, 8, 60]  # 20% of each class: the test set keeps the folder's imbalance
    assert counts["val"] == [79, 80, 3, 24]  # 10% of what test left
    assert [sum(c) for c in zip(*counts.values())] == [991, 1000, 40, 300]  # nothing lost, nothing twice
    # counts and fractions mix; a count still means images per class
    mixed = split_indices(labels, None, CLASSES, data_params(per_class="all", test_per_class=5, val_per_class=0.5))
    assert (
        np.bincount(labels[mixed["test"]]).tolist() == [5] * 4 and np.bincount(labels[mixed["val"]]).tolist()[2] == 18
    )


def test_a_class_too_small_to_split_is_named_with_its_count():
    labels = labels_with((50, 50, 1, 50))
    with pytest.raises(GanaugError) as err:
        split_indices(labels, None, CLASSES, data_params(per_class="all", test_per_class=0.2, val_per_class=0.1))
    assert str(err.value).startswith("data.test_per_class: class 'c2' has 1 images;") and "\n" not in str(err.value)
    with pytest.raises(GanaugError, match="data.val_per_class: class 'c0' has 40 non-test images; 40 for val"):
        split_indices(
            labels_with((50, 50, 50, 50)),
            None,
            CLASSES,
            data_params(per_class="all", test_per_class=10, val_per_class=40),
        )
