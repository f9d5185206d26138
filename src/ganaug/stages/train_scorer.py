"""Stage train_scorer: the real-only timm classifier -> models/scorer/, reports/metrics/real-only.json.

The scorer: the real-only classifier at its full train.epochs that scores synthetic images (cl-sam's confidence,
the labels of unconditional generators' samples and of pseudo-labelled images, the features of FID). The tables'
real-only rows are not this model: they are the baseline@ runs, trained at the experiments' step budget."""

import mlflow

from ganaug import paths
from ganaug.classify.run import RunOutputs, train_and_report
from ganaug.classify.train import Phase
from ganaug.data.store import load_classes, load_split
from ganaug.params import load_params
from ganaug.stages import main
from ganaug.tracking import log_epoch, log_per_class, tracked_run


def run() -> None:
    params = load_params()
    meta = load_classes(paths.PREPARED)
    train, val, test = (load_split(paths.PREPARED / f"{s}.npz") for s in ("train", "val", "test"))
    out = RunOutputs(paths.SCORER, paths.METRICS / "real-only.json", paths.SCORER_REPORTS)
    tags = {"mode": "real-only", "method": "none", "amount": "0", "seed": str(params.train.seed)}
    with tracked_run("train_scorer", params, {"data/prepared": paths.PREPARED}, tags, run_name="real-only"):
        phases = [Phase("train", train, params.train)]
        metrics, timing = train_and_report("real-only", phases, val, test, meta, out, log_epoch=log_epoch)
        if metrics is None:  # a torchrun rank other than 0: it trained, rank 0 reports
            return
        mlflow.log_metrics({"test_accuracy": metrics["test_accuracy"], "test_loss": metrics["test_loss"], **timing})
        log_per_class("test_acc", metrics["per_class_accuracy"])
        mlflow.log_artifacts(str(paths.SCORER_REPORTS), "report")
        mlflow.log_artifact(str(paths.SCORER / "config.json"), "model")
    print(
        f"train_scorer: real-only {params.train.model} test accuracy {metrics['test_accuracy']:.4f} "
        f"({metrics['n_train']} train images, {timing['train_seconds']:.0f} s) -> {paths.SCORER}"
    )


if __name__ == "__main__":
    main(run, torchrun=True)
