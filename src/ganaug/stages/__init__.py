"""One thin module per DVC stage: read params, call the library, write outputs.
Run as ``python -m ganaug.stages.<stage>`` from the project root (dvc.yaml does)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ganaug.errors import GanaugError

if sys.argv[:1] == ["-m"] and os.environ.get("GANAUG_WARM"):  # `python -m ganaug.stages.<stage>` beside a warm server
    from ganaug.warm import hand_off

    hand_off(sys.orig_argv)  # exits with the stage's status once the server ran it; returns if it cannot


def main(stage: Callable[[], None], torchrun: bool = False) -> None:
    """Run a stage; a GanaugError becomes one clear line on stderr and exit status 1.

    ``torchrun``: a training stage, which $GANAUG_DEVICES > 1 starts again under torchrun (one
    process per device; see ganaug.distributed)."""
    from ganaug import distributed, timing

    status = "failed"
    try:
        if torchrun:
            code = distributed.relaunch()
            if code is not None:
                status = "ok" if code == 0 else "failed"
                sys.exit(code)
        started = time.time()
        stage()
        timing.whole_run_was_work(started)
        distributed.shutdown()
        status = "ok"
    except GanaugError as err:
        print(f"ganaug: error: {err}", file=sys.stderr)
        sys.exit(1)
    except (FileNotFoundError, PermissionError, IsADirectoryError) as err:  # a file a stage needs
        print(f"ganaug: error: {err.filename}: {err.strerror}", file=sys.stderr)
        sys.exit(1)
    finally:
        timing.record(timing.stage_name(sys.argv), status)


@contextlib.contextmanager
def staged_output(path: Path):
    """Yield a temporary sibling folder that replaces ``path`` only when the block succeeds,
    so a failed stage never leaves a half-written output behind."""
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    yield tmp
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)


def not_needed(stage: str) -> str | None:
    """Why no planned run needs optional ``stage`` (data/plan/<stage>.json, the plan stage's), or None if one does."""
    import json

    from ganaug import paths

    plan = json.loads((paths.PLAN / f"{stage}.json").read_text())
    if plan["needed_by"]:
        return None
    return (
        f"not needed: no planned run uses sampler {' or '.join(plan['readers'])} "
        "(experiments.samplers, own, replace_sampler, count_sampler)"
    )


def message_png(text: str, path: Path, size: tuple[int, int] = (600, 100)) -> None:
    """A picture that only says why there is no figure (an output DVC expects must still exist); drawn with
    Pillow, not matplotlib, so a stage that skips its work stays fast."""
    import textwrap

    from PIL import Image, ImageDraw

    image = Image.new("L", size, 255)
    ImageDraw.Draw(image).multiline_text((10, 10), textwrap.fill(text, 90), fill=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
