"""Stage rl_policy: train the actor-critic sampler (paper 000) and score every pool image with its
keep probability -> data/rl/keep.parquet; models/rl_policy/; reports/metrics/rl.json."""

import json

import mlflow
import numpy as np
import pandas as pd
from safetensors.torch import save_file

from ganaug import paths
from ganaug.data.store import load_classes
from ganaug.data.store import load_split
from ganaug.device import pick_device, seed_everything
from ganaug.gan.pool import open_pool
from ganaug.params import load_params
from ganaug.sampling.rl import keep_probabilities, train_policy
from ganaug.stages import main
from ganaug.tracking import log_epoch, tracked_run


def run() -> None:
    params = load_params()
    cfg = params.rl
    seed_everything(cfg.seed)
    device = pick_device()
    meta = load_classes(paths.PREPARED)
    real, val = (load_split(paths.PREPARED / f"{s}.npz") for s in ("train", "val"))
    pool = open_pool(paths.POOL)
    inputs = {"data/prepared": paths.PREPARED, "data/synthetic/pool": paths.POOL}
    with tracked_run("rl_policy", params, inputs, {"mode": "rl_policy", "seed": str(cfg.seed)}, run_name="rl_policy"):
        policy, history = train_policy(pool.images, pool.labels, real.images, real.labels, val.images, val.labels,
                                       len(meta["classes"]), cfg, device, on_episode=lambda r: log_epoch(r, "episode"))
        keep = keep_probabilities(policy, pool.images, device)
        kept = int((keep > 0.5).sum())
        chosen_ratio = kept / len(real)
        last = history[-min(10, len(history)):]
        metrics = {
            "episodes": len(history), "pool_size": len(pool), "kept": kept, "kept_fraction": round(kept / len(pool), 5),
            "chosen_ratio": round(chosen_ratio, 4),  # the subset size it picks on its own, x the real set
            "mean_child_score_last10": round(float(np.mean([r["child_score"] for r in last])), 5),
            "mean_child_score_first10": round(float(np.mean([r["child_score"] for r in history[:10]])), 5),
            "mean_reward": round(float(np.mean([r["reward"] for r in history])), 5),
            # how content-dependent the learnt rule is: a policy that keeps everything alike has a tiny spread
            "keep_prob": {"min": round(float(keep.min()), 4), "mean": round(float(keep.mean()), 4),
                          "max": round(float(keep.max()), 4), "std": round(float(keep.std()), 4)},
        }
        mlflow.log_metrics({"chosen_ratio": chosen_ratio, "pool_kept_fraction": kept / len(pool)})
    paths.RL_POLICY.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in policy.actor.state_dict().items()}, str(paths.RL_POLICY / "actor.safetensors"))
    save_file({k: v.detach().cpu().contiguous() for k, v in policy.critic.state_dict().items()}, str(paths.RL_POLICY / "critic.safetensors"))
    paths.RL_KEEP.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"id": np.arange(len(pool), dtype=np.int64), "keep_prob": keep.astype(np.float32)}).to_parquet(paths.RL_KEEP, index=False)
    paths.RL_REPORTS.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(history).to_csv(paths.RL_REPORTS / "episodes.csv", index=False, float_format="%.6g")
    (paths.METRICS / "rl.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"rl_policy: {len(history)} episodes; keeps {kept} of {len(pool)} pool images "
          f"= {chosen_ratio:.2f}x the real set; child score {metrics['mean_child_score_first10']:.3f} -> "
          f"{metrics['mean_child_score_last10']:.3f} (first/last 10 episodes)")


if __name__ == "__main__":
    main(run)
