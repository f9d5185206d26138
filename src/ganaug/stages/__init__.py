"""One thin module per DVC stage: read params, call the library, write outputs.
Run as ``python -m ganaug.stages.<stage>`` from the project root (dvc.yaml does)."""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from ganaug.errors import GanaugError


def main(stage: Callable[[], None], torchrun: bool = False) -> None:
    """Run a stage; a GanaugError becomes one clear line on stderr and exit status 1.

    ``torchrun``: a training stage, which $GANAUG_DEVICES > 1 starts again under torchrun (one
    process per device; see ganaug.distributed)."""
    from ganaug import distributed

    try:
        if torchrun:
            status = distributed.relaunch()
            if status is not None:
                sys.exit(status)
        stage()
        distributed.shutdown()
    except GanaugError as err:
        print(f"ganaug: error: {err}", file=sys.stderr)
        sys.exit(1)
    except (FileNotFoundError, PermissionError, IsADirectoryError) as err:  # a file a stage needs
        print(f"ganaug: error: {err.filename}: {err.strerror}", file=sys.stderr)
        sys.exit(1)


@contextlib.contextmanager
def staged_output(path: Path):
    """Yield a temporary sibling folder that replaces ``path`` only when the block succeeds,
    so a failed stage never leaves a half-written output behind."""
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    yield tmp
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
