"""Looking a params.yaml name up in its registry (SAMPLERS, VARIANTS, ARCHS). params.py types these names as
plain strings, so that reading params imports none of the registries' code; the stage that uses a name looks it
up here and refuses an unknown one in one line naming the key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from ganaug.errors import GanaugError

Entry = TypeVar("Entry")


def lookup(registry: Mapping[str, Entry], name: str, key: str, kind: str, source: str = "params.yaml") -> Entry:
    """``registry[name]``; else a GanaugError such as ``params.yaml: experiments.samplers: unknown sampler 'foo'
    (expected one of: random, cl-sam, ...)``. ``key`` is the params key that holds the name, ``kind`` what it is."""
    if name not in registry:
        raise GanaugError(f"{source}: {key}: unknown {kind} {name!r} (expected one of: {', '.join(registry)})")
    return registry[name]
