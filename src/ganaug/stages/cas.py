"""Stage cas: the classification accuracy score -- the default classifier trained on synthetic
images only (as many per class as the real training set has), tested on the real test set.
Read beside reports/metrics/real-only.json: how much of the real data's worth the pool carries."""

import mlflow
import numpy as np

from ganaug import paths
from ganaug.classify.run import RunOutputs, train_and_report
from ganaug.data.prepare import load_classes
from ganaug.data.store import Split, load_split
from ganaug.gan.pool import open_pool
from ganaug.params import load_params
from ganaug.stages import main
from ganaug.tracking import log_epoch, tracked_run


def synthetic_like(pool, real: Split) -> Split:
    """The first pool images of each class, as many as the real split has of that class."""
    counts = np.bincount(real.labels, minlength=int(pool.labels.max()) + 1)
    idx = np.sort(np.concatenate([np.flatnonzero(pool.labels == c)[:n] for c, n in enumerate(counts)]))
    return Split(np.asarray(pool.images[idx]), pool.labels[idx], np.array([f"pool-{i}" for i in idx]))


def run() -> None:
    params = load_params()
    meta = load_classes(paths.PREPARED)
    real_train, val, test = (load_split(paths.PREPARED / f"{s}.npz") for s in ("train", "val", "test"))
    train = synthetic_like(open_pool(paths.POOL), real_train)
    out = RunOutputs(None, paths.METRICS / "cas.json", paths.CAS_REPORTS)
    tags = {"mode": "cas", "sampler": "first", "ratio": "1.0-replace", "seed": str(params.train.seed)}
    inputs = {"data/prepared": paths.PREPARED, "data/synthetic/pool": paths.POOL}
    with tracked_run("cas", params, inputs, tags, run_name="cas (synthetic only)"):
        metrics, timing = train_and_report("cas", train, val, test, meta, params.train, out, log_epoch=log_epoch)
        mlflow.log_metrics({"test_accuracy": metrics["test_accuracy"], "test_loss": metrics["test_loss"], **timing})
        mlflow.log_artifacts(str(paths.CAS_REPORTS), "report")
    print(f"cas: {params.train.model} trained on {len(train)} synthetic images, real test accuracy "
          f"{metrics['test_accuracy']:.4f} -> {out.metrics_path}")


if __name__ == "__main__":
    main(run)
