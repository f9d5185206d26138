"""A user's own photo folder: every kind of bad or unusual input ends in its documented outcome (read,
converted and counted, skipped and counted, or one line naming the file), user-given splits are used as
given, and duplicates never straddle train and test. All offline, on images made here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganaug.data.prepare import prepare
from ganaug.data.sources import folder
from ganaug.errors import GanaugError
from tests.conftest import params_with


def data_params(**kw):
    return params_with({"data": {"name": "folder", "image_size": 16, **kw}}).data


def gray(value: int, size=(12, 12)) -> Image.Image:
    return Image.fromarray(np.full(size[::-1], value, np.uint8), "L")


def every_case(root) -> dict[str, str]:
    """One file of each case in two classes; returns {file: its expected outcome}."""
    cat, dog = root / "cat", root / "dog"
    cat.mkdir(parents=True)
    dog.mkdir()
    gray(10).save(cat / "plain.png")
    Image.fromarray(np.full((12, 12, 3), (200, 30, 30), np.uint8)).save(cat / "photo.jpg")
    gray(20).save(cat / "a.webp")
    gray(30).save(cat / "b.tif")
    gray(40).save(dog / "c.tiff")
    gray(50).save(dog / "d.bmp")
    frames = [gray(60).convert("P"), gray(250).convert("P")]
    frames[0].save(dog / "e.gif", save_all=True, append_images=frames[1:])  # animated: its first frame is read
    rgba = np.zeros((12, 12, 4), np.uint8)
    rgba[:, :6] = (0, 0, 255, 255)  # left half opaque blue, right half fully transparent (black underneath)
    Image.fromarray(rgba, "RGBA").save(cat / "rgba.png")
    la = np.zeros((12, 12, 2), np.uint8)  # fully transparent black
    Image.fromarray(la, "LA").save(dog / "la.png")
    pal = Image.fromarray(np.zeros((12, 12), np.uint8), "P")
    pal.putpalette([0, 0, 0] * 256)
    pal.save(dog / "palette.png", transparency=0)  # colour 0 transparent: the whole image
    Image.fromarray(np.zeros((12, 12, 4), np.uint8), "CMYK").save(dog / "cmyk.jpg")  # no ink: white
    Image.fromarray(np.full((12, 12), 65535, np.uint16)).save(dog / "deep.png")  # 16-bit white
    wide = np.zeros((8, 16), np.uint8)
    wide[:, :8] = 255  # stored 16 wide x 8 high, the left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display (8 wide x 16 high, the top half white)
    Image.fromarray(wide, "L").save(cat / "rotated.jpg", exif=exif, quality=100)
    gray(70, (50, 50)).save(cat / "huge.png")  # over the decompression-bomb limit the test sets
    (cat / "empty.jpg").write_bytes(b"")
    (dog / "text.jpg").write_text("not an image")
    (cat / "notes.txt").write_text("a note")
    (dog / "list.txt").write_text("a list")
    (dog / "scan.heic").write_bytes(b"\x00" * 10)  # a kind Pillow does not read here: ignored, counted
    return {
        "cat/plain.png": "read",
        "cat/photo.jpg": "read",
        "cat/a.webp": "read",
        "cat/b.tif": "read",
        "dog/c.tiff": "read",
        "dog/d.bmp": "read",
        "dog/e.gif": "read",
        "cat/rgba.png": "converted",
        "dog/la.png": "converted",
        "dog/palette.png": "converted",
        "dog/cmyk.jpg": "converted",
        "dog/deep.png": "converted",
        "cat/rotated.jpg": "read",
        "cat/huge.png": "skipped",
        "cat/empty.jpg": "skipped",
        "dog/text.jpg": "skipped",
    }


@pytest.fixture
def small_bomb_limit(monkeypatch):
    """Pillow refuses images over 2 x MAX_IMAGE_PIXELS (~179 MP by default); 2,000 pixels here."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)


def test_every_kind_of_input_gets_its_documented_outcome(tmp_path, capsys, small_bomb_limit):
    user, raw = tmp_path / "user", tmp_path / "raw"
    expected = every_case(user)
    gray(10).save(user / "cat" / "PLAIN.png")  # the same name but for case: one file on macOS and Windows
    params = data_params(root=str(user), background=255)
    with pytest.raises(GanaugError, match=r"'.*cat/PLAIN.png' and '.*cat/plain.png' differ only in case") as err:
        folder.fetch(raw, params)
    assert "\n" not in str(err.value)
    (user / "cat" / "PLAIN.png").unlink()

    folder.fetch(raw, params)
    assert "ignored 3 files: .txt 2, .heic 1" in capsys.readouterr().out
    with pytest.raises(GanaugError) as err:  # without skip_corrupt: the first unreadable file, in one line
        folder.load(raw, params)
    assert "empty.jpg: unreadable or corrupt image" in str(err.value) and "\n" not in str(err.value)
    (raw / "cat" / "empty.jpg").rename(tmp_path / "aside.jpg")
    (raw / "dog" / "text.jpg").rename(tmp_path / "aside2.jpg")
    with pytest.raises(GanaugError, match="huge.png: more pixels than Pillow decodes safely .*downscale it"):
        folder.load(raw, params)
    (tmp_path / "aside.jpg").rename(raw / "cat" / "empty.jpg")
    (tmp_path / "aside2.jpg").rename(raw / "dog" / "text.jpg")

    loaded = folder.load(raw, data_params(root=str(user), background=255, skip_corrupt=True))
    read = {k for k, v in expected.items() if v != "skipped"}
    assert set(loaded.ids) == read and loaded.skipped == 3
    # converted: every image not stored as RGB, the set's mode (gray, palette, CMYK, 16-bit, transparent alike)
    stored = {k: Image.open(user / k).mode for k in read}
    assert loaded.converted == sum(mode != "RGB" for mode in stored.values())
    assert all(stored[k] != "RGB" for k, v in expected.items() if v == "converted")
    assert loaded.images.shape == (len(read), 16, 16, 3)  # photo.jpg makes the set RGB
    image = dict(zip(loaded.ids, loaded.images.astype(int)))
    assert (image["cat/rgba.png"][:, 2] == (0, 0, 255)).all()  # the opaque half as it was
    assert (image["cat/rgba.png"][:, -2] == 255).all()  # the transparent half on the white background
    assert (image["dog/la.png"] == 255).all() and (image["dog/palette.png"] == 255).all()
    assert (image["dog/cmyk.jpg"] > 245).all() and (image["dog/deep.png"] == 255).all()
    assert abs(image["dog/e.gif"].mean() - 60) < 10  # the first frame, not the second (250)
    rotated = image["cat/rotated.jpg"][..., 0]
    assert rotated[:6].mean() > 200 and rotated[-6:].mean() < 50  # turned upright: the white half on top
    black = folder.load(raw, data_params(root=str(user), background=0, skip_corrupt=True))
    assert (dict(zip(black.ids, black.images))["dog/la.png"] == 0).all()  # data.background sets it


def test_a_folder_with_nothing_readable_in_a_class_says_so(tmp_path):
    user = tmp_path / "user"
    for name in ("cat", "dog"):
        (user / name).mkdir(parents=True)
    gray(1).save(user / "cat" / "ok.png")
    (user / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    params = data_params(root=str(user), skip_corrupt=True)
    folder.fetch(tmp_path / "raw", params)
    with pytest.raises(GanaugError, match="no readable image left in class 'dog' \\(1 unreadable files skipped"):
        folder.load(tmp_path / "raw", params)


def test_a_home_relative_root_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("cat", "dog"):
        (tmp_path / "photos" / name).mkdir(parents=True)
        gray(5).save(tmp_path / "photos" / name / "x.png")
    folder.fetch(tmp_path / "raw", data_params(root="~/photos"))
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["cat", "dog"]


def write_split(root, split: str, per_class: int, start: int = 0) -> None:
    for c, name in enumerate(("cat", "dog")):
        (root / split / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            gray(c * 100 + start + i).save(root / split / name / f"{split}-{i}.png")


def test_user_given_splits_are_used_as_given(tmp_path, capsys):
    user, raw = tmp_path / "user", tmp_path / "raw"
    write_split(user, "train", 20)
    write_split(user, "val", 3, start=40)
    write_split(user, "test", 4, start=60)
    params = data_params(root=str(user), per_class=5)
    folder.fetch(raw, params)
    assert "splits as given: train val test" in capsys.readouterr().out
    summary = prepare(raw, tmp_path / "prepared", params)
    from ganaug.data.store import load_split

    splits = {s: load_split(tmp_path / "prepared" / f"{s}.npz") for s in ("train", "val", "test")}
    assert all(i.startswith("test/") for i in splits["test"].ids) and len(splits["test"]) == 8
    assert all(i.startswith("val/") for i in splits["val"].ids) and len(splits["val"]) == 6
    assert all(i.startswith("train/") for i in splits["train"].ids) and len(splits["train"]) == 10  # per_class 5
    assert summary["counts"]["test"] == {"cat": 4, "dog": 4}

    only_train = tmp_path / "only-train"
    write_split(only_train, "train", 20)
    folder.fetch(tmp_path / "raw2", data_params(root=str(only_train)))
    drawn = prepare(
        tmp_path / "raw2",
        tmp_path / "prepared2",
        data_params(root=str(only_train), per_class=5, val_per_class=2, test_per_class=3),
    )
    assert drawn["counts"]["test"] == {"cat": 3, "dog": 3}  # no test/: drawn from train/


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda r: write_split(r / "dataset", "", 2), "has no images in its class folders, but '.*dataset' holds"),
        (lambda r: (write_split(r, "train", 2), write_split(r, "cat", 1)), "holds split folders \\(train\\) beside"),
        (
            lambda r: (
                write_split(r, "train", 2),
                (r / "test" / "bird").mkdir(parents=True),
                gray(1).save(r / "test" / "bird" / "b.png"),
            ),
            "test/ has class 'bird', which train/ does not have",
        ),
    ],
)
def test_a_root_one_level_off_or_mixed_is_named_in_one_line(tmp_path, make, message):
    user = tmp_path / "user"
    user.mkdir()
    make(user)
    with pytest.raises(GanaugError, match=message) as err:
        folder.fetch(tmp_path / "raw", data_params(root=str(user)))
    assert "\n" not in str(err.value)


def test_duplicates_are_kept_once_on_the_test_side_and_a_label_conflict_is_refused(tmp_path):
    user, raw = tmp_path / "user", tmp_path / "raw"
    write_split(user, "train", 12)
    write_split(user, "test", 3, start=60)
    gray(0).save(user / "train" / "cat" / "copy-of-train-0.png")  # a twin within train
    gray(60).save(user / "train" / "cat" / "copy-of-test-0.png")  # a twin of a test image, in train
    params = data_params(root=str(user), per_class="all", val_per_class=2)
    folder.fetch(raw, params)
    summary = prepare(raw, tmp_path / "prepared", params)
    from ganaug.data.store import load_split

    train = load_split(tmp_path / "prepared" / "train.npz")
    val = load_split(tmp_path / "prepared" / "val.npz")
    test = load_split(tmp_path / "prepared" / "test.npz")
    assert "test/cat/test-0.png" in test.ids
    assert "train/cat/copy-of-test-0.png" not in set(train.ids) | set(val.ids)  # only the test side kept
    kept = {bytes(im) for im in np.concatenate([train.images, val.images, test.images])}
    assert len(kept) == len(train) + len(val) + len(test)  # no image twice anywhere
    assert summary["duplicates"] == {"removed": 1, "removed_across_splits": 1}

    drop = data_params(root=str(user), per_class="all", val_per_class=2, duplicates="drop")
    dropped = prepare(raw, tmp_path / "prepared-drop", drop)
    assert dropped["duplicates"] == {"removed": 1, "dropped_across_splits": 2}
    assert "test/cat/test-0.png" not in load_split(tmp_path / "prepared-drop" / "test.npz").ids

    gray(101).save(user / "train" / "cat" / "looks-like-a-dog.png")  # dog's train-1 pixels, labelled cat
    folder.fetch(raw, params)
    with pytest.raises(GanaugError, match="are the same image under classes 'cat' and 'dog' \\(a labelling conflict"):
        prepare(raw, tmp_path / "prepared-conflict", params)


def test_worker_processes_and_jpeg_draft_decoding_give_the_same_images(tmp_path):
    """Decoding in 2 worker processes returns what one process does, in order; a JPEG decoded at a reduced
    scale (draft) is within a few grey levels of the full decode, resized the same way."""
    rng = np.random.default_rng(0)
    files = []
    for i in range(folder.PARALLEL_FROM + 4):
        smooth = np.kron(rng.integers(0, 256, (8, 8, 3)), np.ones((32, 32, 1))).astype(np.uint8)  # 256 px blocks
        files.append(tmp_path / f"{i}.jpg")
        Image.fromarray(smooth).save(files[-1], quality=95)
    jobs = [(f, 16, "RGB", "stretch", 255) for f in files]
    serial, parallel = folder.read_all(jobs, workers=1), folder.read_all(jobs, workers=2)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(serial, parallel))
    full = folder._read(files[0], 16, "RGB", "stretch", 255, draft=False)[0].astype(int)
    assert np.abs(serial[0][0].astype(int) - full).mean() < 4


def test_a_class_named_train_is_a_class_not_a_split(tmp_path):
    """CIFAR-100 exported as class folders has a class 'train': it holds images, so the layout is plain."""
    user = tmp_path / "user"
    for name in ("car", "plane", "train"):
        (user / name).mkdir(parents=True)
        gray(len(name)).save(user / name / "x.png")
    folder.fetch(tmp_path / "raw", data_params(root=str(user)))
    assert folder.load(tmp_path / "raw", data_params(root=str(user))).classes == ["car", "plane", "train"]


def test_per_class_beyond_a_given_train_split_is_named(tmp_path):
    user = tmp_path / "user"
    write_split(user, "train", 5)
    write_split(user, "val", 10, start=40)
    params = data_params(root=str(user), per_class=20)
    folder.fetch(tmp_path / "raw", params)
    with pytest.raises(GanaugError, match="class 'cat' has 4 training images .* data.per_class asks for 20"):
        prepare(tmp_path / "raw", tmp_path / "prepared", params)


def test_messages_name_an_image_in_the_users_folder_not_its_escaped_copy(tmp_path, monkeypatch):
    """The mirror stores class '3% three' as '3%25 three'; a message names the file as the user wrote it, under
    data.root."""
    monkeypatch.chdir(tmp_path)
    user, raw = Path("data/images"), Path("data/raw/folder")
    write_split(user, "train", 2)
    (user / "train" / "3% three").mkdir()
    gray(200).save(user / "train" / "3% three" / "ok.png")
    (user / "train" / "3% three" / "empty.jpg").write_bytes(b"")
    params = data_params(root="data/images", per_class="all", val_per_class=1, test_per_class=1)
    folder.fetch(raw, params)
    assert (raw / "train" / "3%25 three" / "empty.jpg").is_file()  # the escaped copy prepare reads
    with pytest.raises(GanaugError) as err:
        prepare(raw, Path("prepared"), params)
    assert str(err.value).startswith("data/images/train/3% three/empty.jpg: unreadable or corrupt image")
    assert "%25" not in str(err.value)

    (user / "train" / "3% three" / "ok.png").unlink()
    folder.fetch(raw, params)
    with pytest.raises(GanaugError, match="^data/images: no readable image left in class '3% three'"):
        folder.load(raw, data_params(root="data/images", skip_corrupt=True))

    (user / "train" / "3% three" / "empty.jpg").unlink()
    gray(0).save(user / "train" / "3% three" / "twin.png")  # the pixels of cat's train-0.png
    folder.fetch(raw, params)
    with pytest.raises(GanaugError) as err:
        prepare(raw, Path("prepared"), params)
    assert str(err.value).startswith(
        "'data/images/train/3% three/twin.png' and 'data/images/train/cat/train-0.png' are the same image"
    )


def digit(level: int, seven: bool) -> np.ndarray:
    """A 12 x 12 gray 1 or 7, at gray ``level`` on black."""
    pixels = np.zeros((12, 12), np.uint8)
    pixels[2:10, 5:7] = level
    if seven:
        pixels[2:4, 2:7] = level
    return pixels


def gray_folder(root: Path) -> None:
    """Two classes of gray digits, one stored each way a gray image can be: L, RGB (JPEG, lossy WebP, BMP),
    16-bit, and RGBA with transparent columns; each at its own gray level, so none is a duplicate."""
    for c, name in enumerate(("one", "seven")):
        (root / name).mkdir(parents=True)
        level = [100 + 10 * c + 25 * k for k in range(6)]
        rgb = [np.dstack([digit(v, bool(c))] * 3) for v in level]
        Image.fromarray(digit(level[0], bool(c)), "L").save(root / name / "plain.png")
        Image.fromarray(rgb[1]).save(root / name / "photo.jpg")
        Image.fromarray(rgb[2]).save(root / name / "lossy.webp")  # lossy: R, G and B may come back a level apart
        Image.fromarray(rgb[3]).save(root / name / "b.bmp")
        Image.fromarray(digit(level[4], bool(c)).astype(np.uint16) * 257).save(root / name / "deep.png")
        rgba = np.dstack([rgb[5], np.full((12, 12), 255, np.uint8)])
        rgba[:, :2, 3] = 0
        Image.fromarray(rgba, "RGBA").save(root / name / "rgba.png")


def test_a_folder_of_gray_images_stays_gray_whatever_their_format_and_one_colour_image_makes_it_rgb(tmp_path):
    user, raw = tmp_path / "user", tmp_path / "raw"
    gray_folder(user)
    params = data_params(root=str(user), background=128, per_class="all", val_per_class=1, test_per_class=1)
    assert params.channels is None
    folder.fetch(raw, params)
    loaded = folder.load(raw, params)
    assert loaded.images.shape == (12, 16, 16, 1) and loaded.gray_kept
    assert loaded.converted == 10  # every file but the 2 stored as L
    as_l = folder.load(raw, data_params(root=str(user), background=128, channels=1)).images
    assert np.abs(loaded.images.astype(int) - as_l).max() <= 1  # as if data.channels: 1
    summary = prepare(raw, tmp_path / "prepared", params)
    assert summary["channels"] == 1 and summary["gray_kept"] == 12

    tinted = np.zeros((12, 12, 3), np.uint8)
    tinted[2:10, 5:7] = (150, 150, 162)  # a faint blue, 12 levels: colour
    Image.fromarray(tinted).save(user / "one" / "tinted.png")
    folder.fetch(raw, params)
    loaded = folder.load(raw, params)
    assert loaded.images.shape == (13, 16, 16, 3) and not loaded.gray_kept
    assert loaded.converted == 6  # the L, 16-bit and RGBA files
    assert "gray_kept" not in prepare(raw, tmp_path / "prepared-rgb", params)
