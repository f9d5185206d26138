"""A user's image folder, in one of two layouts:

- ``<root>/<class_name>/<image>``: the splits are drawn from it (data.test_per_class, val_per_class, per_class);
- ``<root>/train/<class_name>/<image>`` with optional ``val/`` and ``test/`` beside it (the ImageFolder
  convention): those splits are used as given, and data.per_class draws from ``train/`` only.

Images are whatever Pillow decodes among EXTENSIONS (a GIF's or WebP's first frame), any size, gray, RGB,
CMYK or with transparency (composited onto data.background); other files are ignored and counted by kind.
With data.channels: null the set is gray when every image is gray once decoded and composited (R = G = B),
whatever mode its files are stored in, and RGB when any image has colour.

``fetch`` makes ``data/raw/folder/`` an exact mirror of the folder's images: new and changed
files are copied, deleted ones removed, a file moved to another class folder moves with its label.
The folder is a dependency of the fetch stage (``data.root`` in dvc.yaml), so an edit there makes
``dvc repro`` re-run fetch and whatever the mirror changes. Characters not valid in a file name on
Windows or macOS (``:``, ``?`` and the like) are stored percent-encoded in the mirror; the label is
always the folder's own name, and a message names an image by its path under data.root
(``user_path``), never by its escaped copy. Names that differ only in case are refused (they collide on macOS and
Windows). Hidden files are ignored; a class folder that is a symbolic link is refused: DVC
does not follow links when it checks the folder for changes, so edits behind one would go unseen.

The folder itself is the user's to version: ``dvc add data/images`` (or ``dvc import-url`` for a folder
elsewhere) puts it in DVC, so that a colleague's ``git clone`` + ``dvc pull`` restores it; fetch warns
when it is not.
"""

from __future__ import annotations

import filecmp
import os
import shutil
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ganaug import paths
from ganaug.data.sources.base import RawDataset
from ganaug.errors import GanaugError

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
GRAY_MODES = ("L", "1", "I", "I;16", "LA")
SPLITS = ("train", "val", "test")
# characters a file name cannot hold on Windows or macOS, and '%' itself (the escape)
NOT_PORTABLE = '<>:"/\\|?*%'
PARALLEL_FROM = 256  # images: below this, starting worker processes costs more than it saves
WORKERS_ENV = "GANAUG_DECODE_WORKERS"  # decoding processes; default: the cores this process may use
UNREADABLE = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)
# levels R, G and B may differ by in a gray image: lossy WebP and some JPEG encoders round its YUV to RGB unevenly
GRAY_TOLERANCE = 4


def portable(name: str) -> str:
    """``name`` with the characters not valid in a file name on every OS percent-encoded."""
    return "".join(quote(ch, safe="") if ch in NOT_PORTABLE or ord(ch) < 32 else ch for ch in name)


def image_id(raw_dir: Path, file: Path) -> str:
    """A mirrored image's path under data.root as the user wrote it (the mirror's escapes undone): its id."""
    return "/".join(unquote(part) for part in file.relative_to(raw_dir).parts)


def user_path(root: str | Path, image_id: str) -> str:
    """Where the user finds image ``image_id``: in their own folder ``root`` (data.root), not in the mirror."""
    return str(Path(root) / image_id)


def _visible(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.iterdir()) if not p.name.startswith(".")]


def _same_but_case(paths: list[Path]) -> tuple[Path, Path] | None:
    seen: dict[str, Path] = {}
    for p in paths:
        if (other := seen.setdefault(p.name.lower(), p)) is not p:
            return other, p
    return None


def _has_images(folder: Path) -> bool:
    return any(p.is_file() and p.suffix.lower() in EXTENSIONS for p in folder.iterdir())


def _class_images(root: Path, what: str, ignored: Counter, at_least: int = 2) -> dict[str, list[Path]]:
    """``{class name: image files}`` of ``root/<class>/``; files of other kinds are counted in ``ignored``.
    ``at_least``: the classes it must have (a given val or test split may hold fewer than train)."""
    folders = [d for d in _visible(root) if d.is_dir()]
    if linked := [d for d in folders if d.is_symlink()]:
        raise GanaugError(
            f"{what}: class folder '{linked[0]}' is a symbolic link; DVC does not follow links when it checks "
            "the folder for changes: copy the images in, or point data.root at the real folder"
        )
    if clash := _same_but_case(folders):
        raise GanaugError(
            f"{what}: class folders '{clash[0]}' and '{clash[1]}' differ only in case; they are one folder on macOS "
            "and Windows: merge or rename one"
        )
    classes = {}
    for d in folders:
        files = [p for p in _visible(d) if p.is_file()]
        if clash := _same_but_case(files):
            raise GanaugError(
                f"{what}: '{clash[0]}' and '{clash[1]}' differ only in case; they are one file on macOS and "
                "Windows: rename one"
            )
        classes[d.name] = [p for p in files if p.suffix.lower() in EXTENSIONS]
        ignored.update(p.suffix.lower() or "(no extension)" for p in files if p.suffix.lower() not in EXTENSIONS)
    if classes and not any(classes.values()):
        inner = [d for d in folders if any(c.is_dir() and _has_images(c) for c in d.iterdir())]
        if inner:  # the class folders are one level down
            raise GanaugError(
                f"{what}: '{root}' has no images in its class folders, but '{inner[0]}' holds class folders of "
                f"images; set data.root: {inner[0]}"
            )
    if empty := [name for name, files in classes.items() if not files]:
        raise GanaugError(
            f"{what}: class folder '{root / empty[0]}' has no images (expected {', '.join(sorted(EXTENSIONS))}); "
            "add images or remove the folder"
        )
    if not classes and at_least == 1:
        raise GanaugError(f"{what}: '{root}' has no class folders (expected {root}/<class_name>/<image>)")
    if len(classes) < at_least:
        found = f"only class '{next(iter(classes))}'" if classes else "no class folders"
        raise GanaugError(
            f"{what}: '{root}' has {found}; a classifier needs at least 2 class folders (<root>/<class_name>/*.png)"
        )
    return classes


def layout(root: Path, what: str = "data.root") -> tuple[dict[str | None, dict[str, list[Path]]], Counter]:
    """``{split: {class: files}}`` of the folder (split None: the plain <root>/<class>/ layout), and the
    files ignored, by kind."""
    if what == "data.root" and root == paths.NO_FOLDER:
        raise GanaugError(
            f"data.root: '{root}' is the placeholder for downloaded datasets; for data.name: folder put your "
            "images in data/images/<class_name>/, run `dvc add data/images` and set data.root: data/images"
        )
    if not root.is_dir():
        raise GanaugError(f"{what}: image folder '{root}' not found (expected <root>/<class_name>/*.png)")
    ignored: Counter = Counter()
    names = {d.name for d in _visible(root) if d.is_dir()}
    train = root / "train"
    # a split tree: train/ holds class folders of images (a class that is named "train" holds images itself)
    if "train" not in names or _has_images(train) or not any(c.is_dir() and _has_images(c) for c in train.iterdir()):
        return {None: _class_images(root, what, ignored)}, ignored
    if others := sorted(names - set(SPLITS)):
        raise GanaugError(
            f"{what}: '{root}' holds split folders ({', '.join(s for s in SPLITS if s in names)}) beside other "
            f"folders ({', '.join(others)}); use either <root>/<class>/ or <root>/train/<class>/ (+ val/, test/)"
        )
    splits = {
        s: _class_images(root / s, f"{what} {s}/", ignored, at_least=2 if s == "train" else 1)
        for s in SPLITS
        if s in names
    }
    for s, classes in splits.items():
        if unknown := sorted(set(classes) - set(splits["train"])):
            raise GanaugError(
                f"{what}: {s}/ has class '{unknown[0]}', which train/ does not have; add it to train/ or remove it"
            )
    return splits, ignored


def ignored_line(ignored: Counter) -> str:
    """E.g. "ignored 3 files: .txt 2, .heic 1" ('' when none)."""
    if not ignored:
        return ""
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(ignored.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"ignored {sum(ignored.values())} files: {kinds}"


def fetch(raw_dir: Path, params) -> Path:
    """Mirror the folder's images into ``raw_dir`` (portable names, the split folders kept); report what changed."""
    root = Path(params.root).expanduser()
    splits, ignored = layout(root)
    wanted = {
        Path(*([split] if split else []), portable(name), portable(f.name)): f
        for split, classes in splits.items()
        for name, files in classes.items()
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
    given = f", splits as given: {' '.join(s for s in splits)}" if None not in splits else ""
    more = f"; {ignored_line(ignored)}" if ignored else ""
    print(
        f"fetch: folder {params.root}: {len(wanted)} images ({added} added, {changed} changed, {len(removed)} removed)"
        f"{given}{more}"
    )
    if not dvc_tracked(root):
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


def _flatten(im: Image.Image, background: int) -> Image.Image:
    """Transparency composited onto a plain ``background`` grey level (RGBA, LA, a palette with a transparent
    colour); other images as they are."""
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode not in ("RGBA", "LA", "PA"):
        return im
    rgba = im.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (background,) * 3 + (255,)), rgba).convert("RGB")


def _read(
    path: Path, size: int, mode: str, how: str, background: int, draft: bool = True
) -> tuple[np.ndarray, str, bool]:
    """The image as uint8 size x size x C, the mode its file stores, and whether it is gray as read (R = G = B
    within GRAY_TOLERANCE; always, read as "L"): computed here, in the worker, so the check costs no second pass.
    ``draft``: a JPEG is decoded at the smallest of 1/1, 1/2, 1/4, 1/8 of its size that still covers ``size``
    (the decoder scales in the DCT: a 1024-px photo shrunk to 32 px decodes at 128 px, several times faster)."""
    with Image.open(path) as im:
        if draft:
            im.draft(None, (size, size))
        im.load()  # decode now, so a truncated file fails here
        stored = im.mode
        im = ImageOps.exif_transpose(im)  # a photo's stored orientation, before crop or pad
        if im.mode.startswith("I"):  # 16/32-bit gray: scale to 8 bits (convert("L") would clip at 255)
            values = np.asarray(im, np.float64)
            top = next(t for t in (255.0, 65535.0, values.max()) if values.max() <= t)
            im = Image.fromarray(np.rint(values * 255 / top).astype(np.uint8))
        im = _fit(_flatten(im, background).convert(mode), size, how)
        image = np.asarray(im, dtype=np.uint8).reshape(size, size, -1)
        return image, stored, bool(np.ptp(image, axis=-1).max() <= GRAY_TOLERANCE)


def _mode(files: list[Path], channels: int | None) -> str:
    if channels is not None:
        return "L" if channels == 1 else "RGB"
    for f in files:
        try:
            with Image.open(f) as im:
                if im.mode not in GRAY_MODES:
                    return "RGB"
        except UNREADABLE:
            continue
    return "L"


def _unreadable(path: Path, err: Exception) -> str:
    if isinstance(err, Image.DecompressionBombError):
        why = f"more pixels than Pillow decodes safely ({Image.MAX_IMAGE_PIXELS * 2:,}); downscale it"
    else:
        why = f"unreadable or corrupt image ({type(err).__name__}); fix or remove it"
    return f"{path}: {why}, or set data.skip_corrupt: true to skip such files"


def _read_or_error(job: tuple) -> tuple[np.ndarray | None, str, bool, Exception | None]:
    """_read for a worker process: an unreadable file comes back as its exception, not raised there."""
    try:
        return (*_read(*job), None)
    except UNREADABLE as err:
        return None, "", False, err


def to_gray(images: np.ndarray) -> np.ndarray:
    """uint8 ... x 3 -> ... x 1 with Pillow's convert("L") weights (exact where R = G = B)."""
    weights = np.array([19595, 38470, 7471], np.uint32)  # ITU-R 601-2 luma, in 1/65536
    return ((images.astype(np.uint32) @ weights + 0x8000) >> 16).astype(np.uint8)[..., None]


def read_all(jobs: list[tuple], workers: int | None = None) -> list[tuple]:
    """_read_or_error over ``jobs`` (each _read's arguments), in order; in ``workers`` processes (default: one
    per core) when there are enough images to pay for starting them."""
    if workers is None:
        workers = int(os.environ.get(WORKERS_ENV) or len(os.sched_getaffinity(0)))  # the cores it may use
    if workers <= 1 or len(jobs) < PARALLEL_FROM:
        return [_read_or_error(job) for job in jobs]
    try:
        with ProcessPoolExecutor(workers) as pool:
            return list(pool.map(_read_or_error, jobs, chunksize=max(1, len(jobs) // (8 * workers))))
    except BrokenProcessPool:
        raise GanaugError(
            f"a worker process decoding images died (a crash inside an image decoder); run prepare with "
            f"{WORKERS_ENV}=1 to find the file"
        ) from None


def load(raw_dir: Path, params) -> RawDataset:
    splits, _ = layout(raw_dir, what=f"{raw_dir} (the fetched mirror of data.root)")
    classes = splits[None] if None in splits else splits["train"]  # every split's classes are train's
    mode = _mode([f for c in splits.values() for files in c.values() for f in files], params.channels)
    label_of = {name: label for label, name in enumerate(classes)}
    names = [unquote(name) for name in classes]  # the folder's own class names, ':' and all
    files = [(split, name, f) for split, c in splits.items() for name, fs in c.items() for f in fs]
    jobs = [(f, params.image_size, mode, params.resize, params.background) for _, _, f in files]
    images, stored, gray, labels, ids, split_of, skipped = [], [], [], [], [], [], 0
    for (split, name, f), (image, stored_mode, is_gray, err) in zip(files, read_all(jobs)):
        if err is not None:
            if not params.skip_corrupt:
                raise GanaugError(_unreadable(user_path(params.root, image_id(raw_dir, f)), err))
            skipped += 1
            continue
        images.append(image)
        stored.append(stored_mode)
        gray.append(is_gray)
        labels.append(label_of[name])
        ids.append(image_id(raw_dir, f))
        split_of.append(split)
    have = np.bincount(np.array(labels, np.int64), minlength=len(classes))
    if (have == 0).any():
        lost = names[int(np.flatnonzero(have == 0)[0])]
        raise GanaugError(
            f"{params.root}: no readable image left in class '{lost}' ({skipped} unreadable files skipped in all); "
            "fix or replace its images"
        )
    # files stored in colour modes (an RGB JPEG, a transparent PNG) whose pixels are all gray: keep one channel
    gray_kept = params.channels is None and mode == "RGB" and all(gray)
    if gray_kept:
        images, mode = [to_gray(image) for image in images], "L"  # one at a time: no 4-byte copy of the whole set
    given = np.array(split_of, object)
    return RawDataset(
        np.stack(images),
        np.array(labels, np.int64),
        np.array(ids),
        names,
        is_test=None if "test" not in splits else given == "test",
        is_val=None if "val" not in splits else given == "val",
        skipped=skipped,
        converted=sum(m != mode for m in stored),
        gray_kept=gray_kept,
    )


def unlabelled_files(root: Path, what: str = "data.unlabelled_root") -> tuple[list[Path], Counter]:
    """Every image file under ``root``, at any depth (sub-folders are not classes here), in sorted order; other
    files counted by kind. Hidden files and folders are skipped."""
    root = root.expanduser()
    if root == paths.NO_FOLDER:
        raise GanaugError(
            f"{what}: '{root}' is the placeholder; put your unlabelled images in a folder such as data/unlabelled/, "
            "run `dvc add data/unlabelled` and set data.unlabelled_root: data/unlabelled"
        )
    if not root.is_dir():
        raise GanaugError(f"{what}: folder '{root}' not found (expected a folder of images, any layout)")
    visible = (p for p in root.rglob("*") if not any(part.startswith(".") for part in p.relative_to(root).parts))
    files = sorted(p for p in visible if p.is_file())
    ignored = Counter(p.suffix.lower() or "(no extension)" for p in files if p.suffix.lower() not in EXTENSIONS)
    images = [p for p in files if p.suffix.lower() in EXTENSIONS]
    if not images:
        raise GanaugError(f"{what}: '{root}' holds no images (expected {', '.join(sorted(EXTENSIONS))})")
    return images, ignored


def load_unlabelled(root: Path, params, channels: int) -> tuple[np.ndarray, np.ndarray, int, Counter]:
    """The unlabelled images under ``root`` as uint8 N x image_size x image_size x ``channels`` (read like the
    labelled folder: data.resize, data.background, data.skip_corrupt), their ids (paths under root), the count
    of unreadable files skipped and the files ignored by kind."""
    files, ignored = unlabelled_files(Path(root))
    jobs = [(f, params.image_size, "L" if channels == 1 else "RGB", params.resize, params.background) for f in files]
    images, ids, skipped = [], [], 0
    for f, (image, _, _, err) in zip(files, read_all(jobs)):
        if err is not None:
            if not params.skip_corrupt:
                raise GanaugError(_unreadable(f, err))
            skipped += 1
            continue
        images.append(image)
        ids.append(f"unlabelled/{f.relative_to(Path(root).expanduser()).as_posix()}")
    if not images:
        raise GanaugError(f"data.unlabelled_root: no readable image in '{root}' ({skipped} unreadable files skipped)")
    return np.stack(images), np.array(ids), skipped, ignored
