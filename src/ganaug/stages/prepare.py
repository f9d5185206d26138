"""Stage prepare: data/raw/<name>/ -> data/prepared/{train,val,test}.npz + classes.json."""

import shutil

from ganaug import paths
from ganaug.data.prepare import prepare
from ganaug.params import load_params
from ganaug.stages import main


def run() -> None:
    data = load_params().data
    tmp = paths.PREPARED.with_name(paths.PREPARED.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    summary = prepare(paths.RAW / data.name, tmp, data)  # a failure leaves no half-written output
    shutil.rmtree(paths.PREPARED, ignore_errors=True)
    tmp.rename(paths.PREPARED)
    sizes = ", ".join(f"{k} {sum(v.values())}" for k, v in summary["counts"].items())
    print(f"prepare: {data.name} {summary['image_size']}px x{summary['channels']}: {sizes} -> {paths.PREPARED}")


if __name__ == "__main__":
    main(run)
