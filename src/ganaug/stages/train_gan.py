"""Stage train_gan: the GAN of gan.arch (the class-conditional cGAN, or the StarGAN translation GAN)
on the real training set, or (gan.arch: style, unconditional) on the unlabelled images -> models/gan/.

FID/KID, diversity and label agreement are measured every gan.eval_every steps in the feature space
of the real-only classifier (models/scorer), against the real train + val images; the generator kept
is the best by FID. Resume state lives in models/gan-checkpoints/<fingerprint>/ (git- and
DVC-ignored): a killed run continues from there on the next `dvc repro`, and a run with other
networks or data gets another folder, so nothing is ever resumed into the wrong model."""

import json

import mlflow
import numpy as np
import pandas as pd
import torch

from ganaug import distributed, paths
from ganaug.data.store import ids_digest, load_classes, load_split
from ganaug.device import pick_device
from ganaug.digests import dvc_md5
from ganaug.errors import GanaugError
from ganaug.gan.archs import ARCHS, relevant_config
from ganaug.gan.export import save_gan
from ganaug.gan.pool import translate_to_every_class
from ganaug.gan.train import best_networks, fingerprint, generate, train_gan
from ganaug.metrics.features import load_feature_extractor
from ganaug.metrics.quality import QualityEvaluator, balanced_draw
from ganaug.params import load_params
from ganaug.plots import image_grid, translation_grid
from ganaug.stages import main
from ganaug.timing import work
from ganaug.tracking import tracked_run


def run() -> None:
    params = load_params()
    cfg = params.gan
    meta = load_classes(paths.PREPARED)
    classes, n_classes = meta["classes"], len(meta["classes"])
    train, val, test = (load_split(paths.PREPARED / f"{s}.npz") for s in ("train", "val", "test"))
    conditional = ARCHS[cfg.arch].conditional
    if not conditional and "unlabelled" not in meta:
        raise GanaugError(
            f"gan.arch: {cfg.arch} is unconditional and learns from unlabelled images; set data.unlabelled: rest "
            "(or folder, with data.unlabelled_root)"
        )
    learn_from = "train.npz" if conditional else "unlabelled.npz"
    source = train if conditional else load_split(paths.PREPARED / learn_from)
    device = distributed.init(pick_device())
    extractor, _ = load_feature_extractor(paths.SCORER)
    reference = np.concatenate([train.images, val.images]), np.concatenate([train.labels, val.labels])
    evaluator = QualityEvaluator(extractor, *reference, n_classes, device, fake_count=cfg.eval_samples)
    # the scorer is part of the fingerprint: FID history and the best-step choice are measured with it
    data_digest = dvc_md5(paths.PREPARED / learn_from) + dvc_md5(paths.SCORER / "model.safetensors")
    ckpt_dir = paths.GAN_CHECKPOINTS / fingerprint(cfg, data_digest, n_classes, meta["channels"], meta["image_size"])
    scalar = lambda row: {k: v for k, v in row.items() if k != "step" and np.isscalar(v)}  # noqa: E731

    def on_eval(row, images):
        mlflow.log_metrics(scalar(row), step=row["step"])
        image_grid(
            images,
            np.arange(len(images)) % n_classes if conditional else evaluator.predict(images),
            classes,
            paths.GAN_REPORTS / "samples-latest.png",
            title=f"step {row['step']}: FID {row['fid']:.1f}",
        )
        mlflow.log_artifact(str(paths.GAN_REPORTS / "samples-latest.png"), f"samples/step-{row['step']:06d}")

    inputs = {"data/prepared": paths.PREPARED, "models/scorer": paths.SCORER}
    with tracked_run("train_gan", params, inputs, {"mode": "gan"}, run_name="gan"), work():
        gan = train_gan(
            source.images,
            source.labels if conditional else np.zeros(len(source), np.int64),
            n_classes,
            cfg,
            device,
            ckpt_dir,
            # an unconditional generator's samples are judged by the classes the scorer sees in them
            evaluate=evaluator.evaluate if conditional else lambda images, _: evaluator.evaluate(images, None),
            on_log=lambda row: mlflow.log_metrics(scalar(row), step=row["step"]),
            on_eval=on_eval,
        )
        if not distributed.is_main():  # a torchrun rank other than 0: it trained, rank 0 reports
            return
        G, D = best_networks(gan)
        save_gan(
            paths.GAN,
            G,
            D,
            {
                "classes": classes,
                "channels": meta["channels"],
                "image_size": meta["image_size"],
                "gan": relevant_config(cfg.model_dump()),
                "best": gan.best,
                "fingerprint": ckpt_dir.name,
            },
        )
        # the real floor: held-out real test images scored exactly like generated ones
        held_out = balanced_draw(
            test.labels, cfg.eval_samples, n_classes, cfg.seed
        )  # class-balanced, like the generated sample
        floor = evaluator.evaluate(test.images[held_out], test.labels[held_out])
        best = next(r for r in gan.evals if r["step"] == gan.best["step"])
        kept = ("fid", "kid", "diversity_ratio", *(("label_agreement",) if conditional else ()))
        metrics = {
            "best_step": gan.best["step"],
            "steps": gan.step,
            "train_ids_md5": ids_digest(source.ids),
            **({} if conditional else {"learned_from": "unlabelled", "images": len(source)}),
            **{k: round(best[k], 5) for k in kept},
            "real_test": {k: round(floor[k], 5) for k in ("fid", "kid", "diversity_ratio", "label_agreement")},
            "diversity_per_class": dict(zip(classes, (round(v, 4) for v in best["diversity_per_class"]))),
        }
        paths.METRICS.mkdir(parents=True, exist_ok=True)
        (paths.METRICS / "gan.json").write_text(json.dumps(metrics, indent=2) + "\n")
        paths.GAN_REPORTS.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(
            [{k: v for k, v in r.items() if k not in ("seconds", "diversity_per_class")} for r in gan.evals]
        ).to_csv(paths.GAN_REPORTS / "quality.csv", index=False, float_format="%.6g")
        pd.DataFrame(gan.losses).to_csv(paths.GAN_REPORTS / "losses.csv", index=False, float_format="%.6g")
        title = f"best generator (step {gan.best['step']}, FID {gan.best['fid']:.1f})"
        if not conditional:  # samples, grouped by the class the scorer sees in them
            z = torch.randn(10 * n_classes, G.z_dim, generator=torch.Generator().manual_seed(cfg.seed))
            samples = generate(G, z, torch.zeros(len(z), dtype=torch.long))
            seen = evaluator.predict(samples)
            order = np.argsort(seen, kind="stable")
            image_grid(samples[order], seen[order], classes, paths.GAN_REPORTS / "samples.png", title=title)
        elif cfg.arch == "cgan":
            z = torch.randn(10 * n_classes, cfg.z_dim, generator=torch.Generator().manual_seed(cfg.seed))
            labels = torch.arange(10 * n_classes) % n_classes
            image_grid(generate(G, z, labels), labels.numpy(), classes, paths.GAN_REPORTS / "samples.png", title=title)
        else:  # a translation generator: one real image per class (left), translated into every class
            show = np.array([np.flatnonzero(train.labels == c)[0] for c in np.unique(train.labels)])
            translation_grid(
                train.images[show],
                translate_to_every_class(G, train.images[show], n_classes),
                [classes[y] for y in train.labels[show]],
                classes,
                paths.GAN_REPORTS / "samples.png",
                title,
            )
        (paths.GAN_REPORTS / "samples-latest.png").unlink(missing_ok=True)
        mlflow.log_metrics(
            {f"best_{k}": v for k, v in metrics.items() if isinstance(v, (int, float))}
        )  # not the ids digest
        mlflow.log_metrics({f"real_test_{k}": v for k, v in metrics["real_test"].items()})
        mlflow.log_artifacts(str(paths.GAN_REPORTS), "report")
    print(
        f"train_gan: {gan.step} steps, best FID {metrics['fid']:.1f} at step {gan.best['step']} "
        f"(real test images: {metrics['real_test']['fid']:.1f}), diversity {metrics['diversity_ratio']:.2f}, "
        + (
            f"label agreement {metrics['label_agreement']:.2f}"
            if conditional
            else f"from {len(source)} unlabelled images"
        )
        + f" -> {paths.GAN}"
    )


if __name__ == "__main__":
    main(run, torchrun=True)
