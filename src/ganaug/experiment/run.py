"""One experiment run, the only part of ganaug.experiment that reads and writes files: the real splits, the pool
(opened once) and its scores in; the selection, the classifier, the run's report folder and its metrics.json
(written once) out; the run logged to MLflow."""

from __future__ import annotations

import json
from pathlib import Path

from ganaug import paths, weights
from ganaug.errors import GanaugError
from ganaug.experiment.plan import RunSpec, recipe
from ganaug.experiment.training import SYNTHETIC, TrainingSet, class_counts, real_only, with_synthetic
from ganaug.gan.pool_format import open_pool
from ganaug.sampling.samplers import SAMPLERS, own_choice, select
from ganaug.sampling.selection import load_source_scores, save_selection


def build_training_set(spec: RunSpec, real, params) -> TrainingSet:
    """The run's training set: a real-only baseline's, or the real images (those a replace run keeps) + the pool
    images its sampler selects, recorded at ``spec.selection_path``. The draw is seeded by (select.seed, the run's
    seed): each seed of a stochastic sampler is a new draw."""
    if not spec.synthetic:
        return real_only(spec.variant, real, params.experiments, spec.seed)
    sampler, how = SAMPLERS[spec.sampler], SYNTHETIC[spec.mode]
    pool = open_pool(paths.POOLS[sampler.source])
    if sampler.source != "pool" and (why := pool.meta.get("skipped")):
        fix = (
            "set data.unlabelled"
            if sampler.source in ("pseudo", "retrieval")
            else "use a generator with a latent space"
        )
        raise GanaugError(f"sampler {sampler.name}: there is no {sampler.source} pool ({why}); {fix}")
    scores = load_source_scores(sampler)
    counts = class_counts(real)
    if how.quota is None:
        ids = own_choice(sampler.name, scores)
    else:
        quota = how.quota(spec.amount, counts, params.select.balance)
        ids = select(sampler.name, scores, quota, [params.select.seed, spec.seed], **sampler.options(params.select))
    selection = save_selection(spec.selection_path, sampler.name, sampler.source, scores, ids)
    if how.quota is None and selection.empty:  # a legitimate choice, but one a reader of the row should not miss
        print(f"{spec.dvc_stage}: warning: sampler {sampler.name} keeps no pool image; this row is real-only training")
    kept = real if how.keep is None else how.keep(spec.amount, real, spec.seed)
    return with_synthetic(kept, len(real), pool, selection, scores, params.experiments, origin=str(spec.selection_path))


def weights_tag(pool_dir) -> dict[str, str]:
    """A pool made from pretrained weights: their md5 as the run's tag input.gan_weights.md5, as train_gan's run
    has it (the experiment stages depend on the pool, not on the weights folder itself)."""
    from ganaug.tracking import GAN_WEIGHTS, input_tag

    md5 = json.loads((pool_dir / "meta.json").read_text()).get("weights_md5")
    return {input_tag(GAN_WEIGHTS): md5} if md5 else {}


def run_experiment(spec: RunSpec, params, track: bool = True) -> dict | None:
    """Train and test one run; writes ``spec.report_dir`` (metrics.json, summary.csv, confusion.png)
    and the classifier to ``spec.model_dir`` (Grad-CAM in the report reads it). Returns the metrics
    (None on a torchrun rank other than 0).
    Every run, the baseline included, gets the same fine-tune phase on real images (equal budgets)."""
    from ganaug.classify.normalize import Normalizer
    from ganaug.classify.run import RunOutputs, train_and_report
    from ganaug.data.store import load_classes, load_split
    from ganaug.digests import dvc_md5
    from ganaug.experiment.training import training_phases

    exp = params.experiments
    meta = load_classes(paths.PREPARED)
    real, val, test = (load_split(paths.PREPARED / f"{s}.npz") for s in ("train", "val", "test"))
    data = build_training_set(spec, real, params)
    phases = training_phases(spec, data, params)
    out = RunOutputs(spec.model_dir, None, spec.report_dir)
    inputs = {"data/prepared": paths.PREPARED}
    if data.selection is not None:
        pool = paths.POOLS[SAMPLERS[spec.sampler].source]
        inputs[str(pool)] = pool
        inputs[str(spec.selection_path)] = spec.selection_path
        if weights.given(params.clip.path):  # every score table (and the retrieval pool) then rests on CLIP
            from ganaug.tracking import CLIP_WEIGHTS

            inputs[CLIP_WEIGHTS] = Path(params.clip.path)
    tags = {"mode": spec.mode, "method": spec.method, "amount": spec.amount, "seed": str(spec.seed), "match": exp.match}
    if data.selection is not None:
        tags.update(weights_tag(pool))
    name = f"{spec.mode}/{spec.key}"
    # pretrain: the synthetic images alone first, normalised like the real images that the fine-tune, the test
    # and the saved model see
    norm = Normalizer.fit(data.real.images) if phases[0].data is data.added else None

    def train():
        from ganaug.tracking import log_epoch

        return train_and_report(name, phases, val, test, meta, out, log_epoch=log_epoch if track else None, norm=norm)

    def finish(metrics: dict) -> dict:
        metrics.update(
            {
                "mode": spec.mode,
                "method": spec.method,  # the sampler, or a real-only run's variant
                "amount": spec.amount,
                "seed": spec.seed,
                "n_real": len(data.real),
                "n_synthetic": data.n_added,
                "recipe": recipe(params),
                # the data this run saw, as DVC hashes it: the report refuses to mix runs of different data
                "inputs": {name: dvc_md5(path) for name, path in inputs.items()},
                "selection": str(spec.selection_path) if data.selection is not None else None,
            }
        )
        spec.report_dir.mkdir(parents=True, exist_ok=True)
        (spec.report_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        return metrics

    if not track:
        metrics, _ = train()
        return None if metrics is None else finish(metrics)
    import mlflow

    from ganaug.tracking import log_per_class, tracked_run

    with tracked_run(spec.dvc_stage, params, inputs, tags, run_name=name):
        metrics, timing = train()
        if metrics is None:  # a torchrun rank other than 0: it trained, rank 0 reports
            return None
        mlflow.log_metrics(
            {
                "test_accuracy": metrics["test_accuracy"],
                "test_loss": metrics["test_loss"],
                "steps": metrics["steps"],
                **timing,
            }
        )
        log_per_class("test_acc", metrics["per_class_accuracy"])
        metrics = finish(metrics)
        mlflow.log_artifacts(str(spec.report_dir), "report")
    return metrics
