"""Stage fetch: the raw dataset as published, checksums verified -> data/raw/<name>/."""

from ganaug import paths
from ganaug.data.sources import get_source
from ganaug.params import load_params
from ganaug.stages import main


def run() -> None:
    data = load_params().data
    raw_dir = paths.RAW / data.name
    fetched = get_source(data.name).fetch(raw_dir, data)
    print(f"fetch: {data.name} -> {fetched}")


if __name__ == "__main__":
    main(run)
