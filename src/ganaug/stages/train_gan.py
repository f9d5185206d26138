"""Stage train_gan: the GAN of gan.arch (the class-conditional cGAN, or the StarGAN translation GAN)
on the real training set, or (gan.arch: style, unconditional) on the unlabelled images -> models/gan/.

FID/KID, diversity and label agreement are measured every gan.eval_every steps in the feature space
of the real-only classifier (models/scorer), against the real train + val images; the generator kept
is the best by FID. Resume state lives in models/gan-checkpoints/<fingerprint>/ (git- and
DVC-ignored): a killed run continues from there on the next `dvc repro`, and a run with other
networks or data gets another folder, so nothing is ever resumed into the wrong model.

A generator that starts from weights (gan.pretrained, e.g. gan.arch ddpm) records their md5 in its config, its
fingerprint and the MLflow run (tag input.gan_weights.md5). With gan.steps 0 it is used as loaded: its FID is
measured once and models/gan keeps a reference to the weights folder, not a copy (ganaug.gan.export). Fine-tuned,
an unconditional one learns from data.unlabelled's images when there are some, else the labelled ones."""

import mlflow
import numpy as np

from ganaug import paths
from ganaug.data.store import load_classes, load_split
from ganaug.device import pick_device
from ganaug.digests import dvc_md5
from ganaug.distributed import Ranks
from ganaug.errors import GanaugError
from ganaug.gan.archs import arch_of, check_weights, from_weights, relevant_config, weights_record
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
from ganaug.tracking import GAN_WEIGHTS, tracked_run


def run() -> None:
    params = load_params()
    cfg, arch = params.gan, arch_of(params.gan.model_dump())
    check_weights(cfg.model_dump())
    pretrained = from_weights(cfg.model_dump())
    meta = load_classes(paths.PREPARED)
    classes, n_classes = meta["classes"], len(meta["classes"])
    train, val, test = (load_split(paths.PREPARED / f"{s}.npz") for s in ("train", "val", "test"))
    if not arch.conditional and "unlabelled" not in meta and not pretrained:
        raise GanaugError(
            f"gan.arch: {cfg.arch} is unconditional and learns from unlabelled images; set data.unlabelled: rest "
            "(or folder, with data.unlabelled_root)"
        )
    # an unconditional generator started from weights fine-tunes on the labelled images when there are no others
    learn_from = "unlabelled.npz" if not arch.conditional and "unlabelled" in meta else "train.npz"
    source = train if learn_from == "train.npz" else load_split(paths.PREPARED / learn_from)
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
    if pretrained:
        inputs[GAN_WEIGHTS] = cfg.pretrained
    with tracked_run("train_gan", params, inputs, {"mode": "gan"}, run_name="gan"), work():
        # an unconditional generator's samples are judged by the classes the scorer sees in them
        labels = source.labels if arch.conditional else np.zeros(len(source), np.int64)
        evaluate = evaluator.evaluate if arch.conditional else lambda images, _: evaluator.evaluate(images, None)
        on_log = lambda row: mlflow.log_metrics(scalars(row), step=row["step"])  # noqa: E731
        grid = Inputs(params, cfg.arch, classes, train, device, lambda: extractor, evaluator.predict)
        sample = None if arch.sample is None else lambda G, wanted: arch.sample(G, grid, wanted.numpy(), cfg.seed + 1)
        gan = train_gan(
            source.images,
            labels,
            n_classes,
            cfg,
            device,
            ckpt_dir,
            evaluate,
            on_log,
            on_eval,
            ranks=ranks,
            sample=sample,
        )
        if not ranks.is_main:  # a torchrun rank other than 0: it trained, rank 0 reports
            return
        G, D = best_networks(gan, cfg)
        config = {"classes": classes, "channels": meta["channels"], "image_size": meta["image_size"]}
        config.update(gan=relevant_config(cfg.model_dump()), best=gan.best, fingerprint=ckpt_dir.name)
        save_gan(paths.GAN, G, D, {**config, **weights_record(cfg.model_dump())}, by_reference=cfg.steps == 0)
        # used as loaded (steps 0), it learned nothing here
        learned_from = "none" if cfg.steps == 0 else learn_from.removesuffix(".npz")
        metrics = gan_metrics(gan, evaluator, test, source, cfg, classes, arch.conditional, learned_from)
        write_results(gan, metrics, paths.METRICS / "gan.json", paths.GAN_REPORTS)
        title = f"best generator (step {gan.best['step']}, FID {gan.best['fid']:.1f})"
        arch.sample_grid(G, grid, title, paths.GAN_REPORTS / "samples.png")
        latest.unlink(missing_ok=True)
        mlflow.log_metrics({f"best_{k}": v for k, v in metrics.items() if isinstance(v, (int, float))})
        mlflow.log_metrics({f"real_test_{k}": v for k, v in metrics["real_test"].items()})
        mlflow.log_artifacts(str(paths.GAN_REPORTS), "report")
    agreement = (
        f"label agreement {metrics['label_agreement']:.2f}"
        if arch.conditional
        else f"from {len(source)} {metrics['learned_from']} images"
    )
    if cfg.steps == 0:
        agreement = f"used as loaded from {cfg.pretrained}"
    print(
        f"train_gan: {gan.step} steps, best FID {metrics['fid']:.1f} at step {gan.best['step']} "
        f"(real test images: {metrics['real_test']['fid']:.1f}), diversity {metrics['diversity_ratio']:.2f}, "
        f"{agreement} -> {paths.GAN}"
    )


if __name__ == "__main__":
    main(run, torchrun=True)
