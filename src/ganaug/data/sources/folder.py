"""A user's image folder: ``<root>/<class_name>/*.{png,jpg,jpeg,bmp}``, any size, gray or RGB.

``fetch`` makes ``data/raw/folder/`` an exact mirror of the folder's images: new and changed
files are copied, deleted ones removed, a file moved to another class folder moves with its label.
The folder is a dependency of the fetch stage (``data.root`` in dvc.yaml), so an edit there makes
``dvc repro`` re-run fetch and whatever the mirror changes. Characters not valid in a file name on
Windows or macOS (``:``, ``?`` and the like) are stored percent-encoded in the mirror; the label is
always the folder's own name. (Reserved names such as ``CON``, and names that differ only in case,
are not handled.) Hidden files are ignored; a class folder that is a symbolic link is refused: DVC
does not follow links when it checks the folder for changes, so edits behind one would go unseen.

The folder itself is the user's to version: ``dvc add data/images`` (or ``dvc import-url`` for a folder
elsewhere) puts it in DVC, so that a colleague's ``git clone`` + ``dvc pull`` restores it; fetch warns
when it is not.
"""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ganaug.data.sources.base import RawDataset
from ganaug.errors import GanaugError
from ganaug.params import NO_FOLDER

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp"}
GRAY_MODES = ("L", "1", "I", "I;16", "LA")
# characters a file name cannot hold on Windows or macOS, and '%' itself (the escape)
NOT_PORTABLE = '<>:"/\\|?*%'


def portable(name: str) -> str:
    """``name`` with the characters not valid in a file name on every OS percent-encoded."""
    return "".join(quote(ch, safe="") if ch in NOT_PORTABLE or ord(ch) < 32 else ch for ch in name)


def _class_images(root: Path, what: str = "data.root") -> dict[str, list[Path]]:
    if what == "data.root" and root == Path(NO_FOLDER):
        raise GanaugError(
            f"data.root: '{root}' is the placeholder for downloaded datasets; for data.name: folder put your "
            "images in data/images/<class_name>/, run `dvc add data/images` and set data.root: data/images"
        )
    if not root.is_dir():
        raise GanaugError(f"{what}: image folder '{root}' not found (expected <root>/<class_name>/*.png)")
    folders = [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    if linked := [d for d in folders if d.is_symlink()]:
        raise GanaugError(
            f"{what}: class folder '{linked[0]}' is a symbolic link; DVC does not follow links when it checks "
            "the folder for changes: copy the images in, or point data.root at the real folder"
        )
    classes = {
        d.name: sorted(
            p for p in d.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in EXTENSIONS
        )
        for d in folders
    }
    empty = [name for name, files in classes.items() if not files]
    if empty:
        raise GanaugError(
            f"{what}: class folder '{root / empty[0]}' has no images (expected *.png, *.jpg, *.jpeg or *.bmp); "
            "add images or remove the folder"
        )
    if len(classes) < 2:
        found = f"only class '{next(iter(classes))}'" if classes else "no class folders"
        raise GanaugError(
            f"{what}: '{root}' has {found}; a classifier needs at least 2 class folders (<root>/<class_name>/*.png)"
        )
    return classes


def fetch(raw_dir: Path, params) -> Path:
    """Mirror the folder's images into ``raw_dir`` (portable names); report what changed."""
    wanted = {
        Path(portable(name)) / portable(f.name): f
        for name, files in _class_images(Path(params.root)).items()
        for f in files
    }
    raw_dir.mkdir(parents=True, exist_ok=True)
    existing = {p.relative_to(raw_dir) for p in raw_dir.rglob("*") if p.is_file()}
    removed = existing - set(wanted)
    for rel in removed:
        (raw_dir / rel).unlink()
    for d in sorted((p for p in raw_dir.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()
    added = changed = 0
    for rel, src in wanted.items():
        dest = raw_dir / rel
        if rel not in existing:
            added += 1
        elif filecmp.cmp(src, dest, shallow=False):
            continue
        else:
            changed += 1
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")  # never a half-copied file under a real name
        shutil.copyfile(src, tmp)
        tmp.replace(dest)
    print(
        f"fetch: folder {params.root}: {len(wanted)} images ({added} added, {changed} changed, {len(removed)} removed)"
    )
    if not dvc_tracked(Path(params.root)):
        print(
            f"fetch: warning: data.root '{params.root}' is not versioned by DVC, so a colleague's `dvc "
            "pull` cannot restore "
            f"it and cannot re-run this pipeline; keep it inside the project and run `dvc add {params.root}` (README)"
        )
    return raw_dir


def dvc_tracked(root: Path, project: Path | None = None) -> bool:
    """Whether ``root`` lies in the project (the working directory) inside a folder a ``.dvc`` file tracks
    (``dvc add`` or ``dvc import-url``), so that git + ``dvc pull`` restore it."""
    project = (project or Path.cwd()).resolve()
    root = root.expanduser().resolve()
    if not root.is_relative_to(project):
        return False
    return any(
        p.with_name(p.name + ".dvc").is_file()
        for p in (root, *root.parents)
        if p.is_relative_to(project) and p != project
    )


def _fit(im: Image.Image, size: int, how: str) -> Image.Image:
    """A square ``size`` image: ``stretch`` the whole image, ``crop`` its centre square, or ``pad``
    it to a square (black borders) — the last two keep the aspect ratio."""
    if im.size == (size, size):
        return im
    w, h = im.size
    if how == "crop" and w != h:
        side = min(w, h)
        im = im.crop(((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side))
    elif how == "pad" and w != h:
        side = max(w, h)
        canvas = Image.new(im.mode, (side, side), 0)
        canvas.paste(im, ((side - w) // 2, (side - h) // 2))
        im = canvas
    return im.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)


def _read(path: Path, size: int, mode: str, how: str) -> tuple[np.ndarray, bool]:
    """The image as uint8 size x size x C, and whether its mode had to be converted."""
    with Image.open(path) as im:
        im.load()  # decode now, so a truncated file fails here
        converted = (im.mode in GRAY_MODES) != (mode == "L")
        im = ImageOps.exif_transpose(im)  # a photo's stored orientation, before crop or pad
        if im.mode.startswith("I"):  # 16/32-bit gray: scale to 8 bits (convert("L") would clip at 255)
            values = np.asarray(im, np.float64)
            top = next(t for t in (255.0, 65535.0, values.max()) if values.max() <= t)
            im = Image.fromarray(np.rint(values * 255 / top).astype(np.uint8))
        im = _fit(im.convert(mode), size, how)
        return np.asarray(im, dtype=np.uint8).reshape(size, size, -1), converted


def _mode(files: list[Path], channels: int | None) -> str:
    if channels is not None:
        return "L" if channels == 1 else "RGB"
    for f in files:
        try:
            with Image.open(f) as im:
                if im.mode not in GRAY_MODES:
                    return "RGB"
        except (UnidentifiedImageError, OSError):
            continue
    return "L"


def load(raw_dir: Path, params) -> RawDataset:
    classes = _class_images(raw_dir, what=f"{raw_dir} (the fetched mirror of data.root)")
    mode = _mode([f for files in classes.values() for f in files], params.channels)
    images, labels, ids, skipped, converted = [], [], [], 0, 0
    names = [unquote(name) for name in classes]  # the folder's own class names, ':' and all
    for label, (name, files) in enumerate(zip(names, classes.values())):
        for f in files:
            try:
                image, was_converted = _read(f, params.image_size, mode, params.resize)
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
                if not params.skip_corrupt:
                    raise GanaugError(
                        f"{f}: unreadable or corrupt image ({type(err).__name__}); fix or remove it, "
                        "or set data.skip_corrupt: true to skip such files"
                    ) from None
                skipped += 1
                continue
            images.append(image)
            converted += was_converted
            labels.append(label)
            ids.append(f"{name}/{unquote(f.name)}")
    return RawDataset(
        np.stack(images), np.array(labels, np.int64), np.array(ids), names, skipped=skipped, converted=converted
    )
