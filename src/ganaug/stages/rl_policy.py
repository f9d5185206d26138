"""Stage rl_policy: train the RL sampler (paper 000) and score every pool image with its keep
probability -> data/rl/keep.parquet; models/rl_policy/; reports/metrics/rl.json (what it keeps:
its size, the spread of keep probabilities, the scorer's confidence and D's realism of kept vs
dropped images); reports/rl/episodes.csv (the reward curve)."""

import json
import shutil

from ganaug import paths
from ganaug.stages import main, not_needed


def skip(why: str) -> None:
    """No planned run uses the agent: its outputs say why, and a sampler that reads them refuses in one line."""
    for stale in (paths.RL_POLICY, paths.RL_KEEP.parent):  # an earlier agent's (DVC clears them; a hand run may not)
        shutil.rmtree(stale, ignore_errors=True)
    for folder in (paths.RL_POLICY, paths.RL_KEEP.parent, paths.RL_REPORTS, paths.METRICS):
        folder.mkdir(parents=True, exist_ok=True)
    note = json.dumps({"skipped": why}, indent=2) + "\n"
    for path in (paths.RL_POLICY / "skipped.json", paths.RL_KEEP.parent / "skipped.json", paths.METRICS / "rl.json"):
        path.write_text(note)
    (paths.RL_REPORTS / "episodes.csv").write_text("episode\n")
    print(f"rl_policy: skipped ({why})")


def run() -> None:
    if why := not_needed("rl_policy"):
        return skip(why)
    # what the agent's training needs, loaded only when a run needs it
    import mlflow
    import numpy as np
    import pandas as pd
    from safetensors.torch import save_file

    from ganaug.data.store import load_classes, load_split
    from ganaug.device import pick_device, seed_everything
    from ganaug.gan.pool_format import open_pool
    from ganaug.params import load_params
    from ganaug.sampling.rl import keep_probabilities, policy_metrics, train_policy
    from ganaug.sampling.scores import load_scores
    from ganaug.tracking import log_epoch, tracked_run

    params = load_params()
    cfg = params.rl
    seed_everything(cfg.seed)
    device = pick_device()
    meta = load_classes(paths.PREPARED)
    real, val = (load_split(paths.PREPARED / f"{s}.npz") for s in ("train", "val"))
    pool = open_pool(paths.POOL)
    inputs = {"data/prepared": paths.PREPARED, "data/synthetic/pool": paths.POOL, "data/scores": paths.SCORES}
    with tracked_run("rl_policy", params, inputs, {"mode": "rl_policy", "seed": str(cfg.seed)}, run_name="rl_policy"):
        actor, history = train_policy(
            pool.images,
            pool.labels,
            real.images,
            real.labels,
            val.images,
            val.labels,
            len(meta["classes"]),
            cfg,
            device,
            on_episode=lambda r: log_epoch(r, "episode"),
        )
        keep = keep_probabilities(actor, pool.images, pool.labels, device)
        metrics = policy_metrics(history, keep, len(real), load_scores(paths.SCORES).table)
        mlflow.log_metrics({"chosen_ratio": metrics["chosen_ratio"], "pool_kept_fraction": metrics["kept_fraction"]})
    paths.RL_POLICY.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in actor.state_dict().items()},
        str(paths.RL_POLICY / "actor.safetensors"),
    )
    paths.RL_KEEP.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"id": np.arange(len(pool), dtype=np.int64), "keep_prob": keep.astype(np.float32)}).to_parquet(
        paths.RL_KEEP, index=False
    )
    paths.RL_REPORTS.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(history).to_csv(paths.RL_REPORTS / "episodes.csv", index=False, float_format="%.6g")
    (paths.METRICS / "rl.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(
        f"rl_policy: {len(history)} episodes; keeps {metrics['kept']} of {len(pool)} pool images "
        f"= {metrics['chosen_ratio']:.2f}x the real set (keep probability {metrics['keep_prob']['min']:.2f}-"
        f"{metrics['keep_prob']['max']:.2f}); child score {metrics['mean_child_score_first10']:.3f} -> "
        f"{metrics['mean_child_score_last10']:.3f} (first/last 10 episodes)"
    )


if __name__ == "__main__":
    main(run)
