"""Stage train_gan: the GAN of gan.arch (the class-conditional cGAN, or the StarGAN translation GAN)
on the real training set, or (gan.arch: style, unconditional) on the unlabelled images -> models/gan/.

FID/KID, diversity and label agreement are measured every gan.eval_every steps in the feature space
of the real-only classifier (models/scorer), against the real train + val images; the generator kept
is the best by FID. Resume state lives in models/gan-checkpoints/<fingerprint>/ (git- and
DVC-ignored): a killed run continues from there on the next `dvc repro`, and a run with other
networks or data gets another folder, so nothing is ever resumed into the wrong model."""

import mlflow
import numpy as np

from ganaug import paths
from ganaug.data.store import load_classes, load_split
from ganaug.device import pick_device
from ganaug.digests import dvc_md5
from ganaug.distributed import Ranks
from ganaug.errors import GanaugError
from ganaug.gan.archs import arch_of, relevant_config
from ganaug.gan.export import save_gan
from ganaug.gan.interface import Inputs
from ganaug.gan.results import gan_metrics, scalars, write_results
from ganaug.gan.train import best_networks, fingerprint, train_gan
from ganaug.metrics.features import load_feature_extractor
from ganaug.metrics.quality import QualityEvaluator
from ganaug.params import load_params
from ganaug.plots import image_grid
from ganaug.stages import main
from ganaug.timing import work
from ganaug.tracking import tracked_run


def run() -> None:
    params = load_params()
    cfg, arch = params.gan, arch_of(params.gan.model_dump())
    meta = load_classes(paths.PREPARED)
    classes, n_classes = meta["classes"], len(meta["classes"])
    train, val, test = (load_split(paths.PREPARED / f"{s}.npz") for s in ("train", "val", "test"))
    if not arch.conditional and "unlabelled" not in meta:
        raise GanaugError(
            f"gan.arch: {cfg.arch} is unconditional and learns from unlabelled images; set data.unlabelled: rest "
            "(or folder, with data.unlabelled_root)"
        )
    learn_from = "train.npz" if arch.conditional else "unlabelled.npz"
    source = train if arch.conditional else load_split(paths.PREPARED / learn_from)
    ranks = Ranks.join(pick_device())
    device = ranks.device
    extractor, _ = load_feature_extractor(paths.SCORER)
    reference = np.concatenate([train.images, val.images]), np.concatenate([train.labels, val.labels])
    evaluator = QualityEvaluator(extractor, *reference, n_classes, device, fake_count=cfg.eval_samples)
    # the scorer is part of the fingerprint: FID history and the best-step choice are measured with it
    data_digest = dvc_md5(paths.PREPARED / learn_from) + dvc_md5(paths.SCORER / "model.safetensors")
    ckpt_dir = paths.GAN_CHECKPOINTS / fingerprint(cfg, data_digest, n_classes, meta["channels"], meta["image_size"])
    latest = paths.GAN_REPORTS / "samples-latest.png"

    def on_eval(row, images):
        mlflow.log_metrics(scalars(row), step=row["step"])
        seen = np.arange(len(images)) % n_classes if arch.conditional else evaluator.predict(images)
        image_grid(images, seen, classes, latest, title=f"step {row['step']}: FID {row['fid']:.1f}")
        mlflow.log_artifact(str(latest), f"samples/step-{row['step']:06d}")

    inputs = {"data/prepared": paths.PREPARED, "models/scorer": paths.SCORER}
    with tracked_run("train_gan", params, inputs, {"mode": "gan"}, run_name="gan"), work():
        # an unconditional generator's samples are judged by the classes the scorer sees in them
        labels = source.labels if arch.conditional else np.zeros(len(source), np.int64)
        evaluate = evaluator.evaluate if arch.conditional else lambda images, _: evaluator.evaluate(images, None)
        on_log = lambda row: mlflow.log_metrics(scalars(row), step=row["step"])  # noqa: E731
        gan = train_gan(source.images, labels, n_classes, cfg, device, ckpt_dir, evaluate, on_log, on_eval, ranks=ranks)
        if not ranks.is_main:  # a torchrun rank other than 0: it trained, rank 0 reports
            return
        G, D = best_networks(gan, cfg)
        config = {"classes": classes, "channels": meta["channels"], "image_size": meta["image_size"]}
        save_gan(
            paths.GAN,
            G,
            D,
            {**config, "gan": relevant_config(cfg.model_dump()), "best": gan.best, "fingerprint": ckpt_dir.name},
        )
        metrics = gan_metrics(gan, evaluator, test, source, cfg, classes, arch.conditional)
        write_results(gan, metrics, paths.METRICS / "gan.json", paths.GAN_REPORTS)
        grid = Inputs(params, cfg.arch, classes, train, device, lambda: extractor, evaluator.predict)
        title = f"best generator (step {gan.best['step']}, FID {gan.best['fid']:.1f})"
        arch.sample_grid(G, grid, title, paths.GAN_REPORTS / "samples.png")
        latest.unlink(missing_ok=True)
        mlflow.log_metrics({f"best_{k}": v for k, v in metrics.items() if isinstance(v, (int, float))})
        mlflow.log_metrics({f"real_test_{k}": v for k, v in metrics["real_test"].items()})
        mlflow.log_artifacts(str(paths.GAN_REPORTS), "report")
    agreement = (
        f"label agreement {metrics['label_agreement']:.2f}"
        if arch.conditional
        else f"from {len(source)} unlabelled images"
    )
    print(
        f"train_gan: {gan.step} steps, best FID {metrics['fid']:.1f} at step {gan.best['step']} "
        f"(real test images: {metrics['real_test']['fid']:.1f}), diversity {metrics['diversity_ratio']:.2f}, "
        f"{agreement} -> {paths.GAN}"
    )


if __name__ == "__main__":
    main(run, torchrun=True)
