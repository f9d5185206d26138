"""Stage prepare: data/raw/<name>/ -> data/prepared/{train,val,test}.npz + classes.json."""

from ganaug import paths
from ganaug.data.prepare import prepare
from ganaug.params import load_params
from ganaug.stages import main, staged_output


def run() -> None:
    data = load_params().data
    with staged_output(paths.PREPARED) as out:
        summary = prepare(paths.RAW / data.name, out, data)
    sizes = ", ".join(f"{k} {sum(v.values())}" for k, v in summary["counts"].items())
    notes = []
    if summary["skipped_corrupt"]:
        notes.append(f"{summary['skipped_corrupt']} corrupt files skipped")
    if summary["converted_images"]:
        notes.append(
            f"{summary['converted_images']} images converted to {'RGB' if summary['channels'] == 3 else 'grayscale'}"
        )
    if summary.get("gray_kept"):
        notes.append(f"all {summary['gray_kept']} images gray (R = G = B): kept 1 channel")
    for kind, n in summary.get("duplicates", {}).items():
        notes.append(f"{n} duplicate images {kind.replace('_', ' ')}")
    if summary.get("given_splits"):
        notes.append(f"{' and '.join(summary['given_splits'])} as given in data.root")
    if unlabelled := summary.get("unlabelled"):
        dropped = ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in unlabelled.get("dropped", {}).items())
        dropped = f" ({dropped}: dropped)" if dropped else ""
        notes.append(f"unlabelled {unlabelled['images']} from {unlabelled['source']}{dropped}")
    skipped = f" ({'; '.join(notes)})" if notes else ""
    print(
        f"prepare: {data.name} {summary['image_size']}px x{summary['channels']}: {sizes}{skipped} -> {paths.PREPARED}"
    )


if __name__ == "__main__":
    main(run)
