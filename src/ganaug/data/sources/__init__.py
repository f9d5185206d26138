"""Dataset sources behind one interface: ``fetch(raw_dir, params)`` writes the archives as
published (checksums verified) and ``load(raw_dir, params)`` reads them into a RawDataset."""

from __future__ import annotations

from types import ModuleType

from ganaug.data.sources import cifar10, digits, fashion_mnist, folder, mnist
from ganaug.errors import GanaugError

SOURCES: dict[str, ModuleType] = {
    "fashion-mnist": fashion_mnist,
    "mnist": mnist,
    "digits": digits,
    "cifar10": cifar10,
    "folder": folder,
}


def get_source(name: str) -> ModuleType:
    try:
        return SOURCES[name]
    except KeyError:
        raise GanaugError(f"data.name: unknown dataset '{name}' (expected one of: {', '.join(SOURCES)})") from None
