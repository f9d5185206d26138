"""Content digests: a file's, and the md5 DVC records for a file or folder. Written into outputs (each run's
input md5s, a pool's generator md5, the GAN checkpoint's fingerprint), so the stages that use them list this file
as a dependency."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ganaug.errors import GanaugError

_seen: dict[tuple, str] = {}  # (path, algorithm, size, mtime) -> digest: a run's inputs are hashed once a process


def file_digest(path: Path, algorithm: str) -> str:
    stat = Path(path).stat()
    key = (str(Path(path).resolve()), algorithm, stat.st_size, stat.st_mtime_ns)
    if key not in _seen:
        _seen[key] = _read_digest(path, algorithm)
    return _seen[key]


def _read_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dvc_md5(path: Path) -> str:
    """The md5 DVC 3 records for ``path``: a file's md5, or for a folder the md5 of the sorted
    JSON list of {md5, relpath} of its files, suffixed '.dir' (as dvc_data's Tree.digest)."""
    path = Path(path)
    if path.is_file():
        return file_digest(path, "md5")
    if not path.is_dir():
        raise GanaugError(f"{path}: input not found (run the stage that produces it)")
    entries = sorted(
        (
            {"md5": file_digest(p, "md5"), "relpath": p.relative_to(path).as_posix()}
            for p in path.rglob("*")
            if p.is_file()
        ),
        key=lambda e: e["relpath"],
    )
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode("utf-8")).hexdigest() + ".dir"
