"""Each class's text prompt, from prompts.yaml: a template with ``{class}`` for every class, and per-class
overrides. The sd generator prompts with them and CLIP labels images against them, so both read the same file."""

from __future__ import annotations

from pathlib import Path

import yaml

from ganaug import paths
from ganaug.errors import GanaugError


def load_prompts(classes: list[str], path: Path = paths.PROMPTS) -> list[str]:
    """The prompt of each class, in class order; a missing file, a template without ``{class}`` or an override
    for a class the data does not have is refused in one line."""
    path = Path(path)
    if not path.is_file():
        raise GanaugError(f"{path}: not found (expected the prompts file: template: 'a photo of a {{class}}')")
    raw = yaml.safe_load(path.read_text()) or {}
    unknown = set(raw) - {"template", "classes"}
    if unknown:
        raise GanaugError(f"{path}: unknown key(s) {sorted(unknown)} (expected template and classes)")
    template, overrides = raw.get("template"), raw.get("classes") or {}
    if not isinstance(template, str) or "{class}" not in template:
        raise GanaugError(f"{path}: template: expected a string with {{class}} in it (got {template!r})")
    if not isinstance(overrides, dict):
        raise GanaugError(f"{path}: classes: expected a mapping of class name to prompt (got {overrides!r})")
    extra = [c for c in overrides if c not in classes]
    if extra:
        raise GanaugError(f"{path}: classes: {extra[0]!r} is not a class of the data (expected one of {classes})")
    return [str(overrides.get(c, template.replace("{class}", c))) for c in classes]
