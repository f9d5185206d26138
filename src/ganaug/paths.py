"""Where each artifact lives, relative to the project root (the same paths dvc.yaml names)."""

from pathlib import Path

RAW = Path("data/raw")
# a placeholder folder in git (a README only): data.root and data.unlabelled_root name it when no folder is used
NO_FOLDER = Path("data/no-images")
# a placeholder folder in git (a README only): gan.pretrained and clip.path name it when no weights are used
NO_WEIGHTS = Path("weights/none")
PROMPTS = Path("prompts.yaml")  # each class's text prompt (gan.arch sd, CLIP)
PREPARED = Path("data/prepared")
SCORER = Path("models/scorer")
METRICS = Path("reports/metrics")
SCORER_REPORTS = Path("reports/scorer")
GAN = Path("models/gan")
GAN_CHECKPOINTS = Path("models/gan-checkpoints")  # resume state, outside DVC (see train_gan)
GAN_REPORTS = Path("reports/gan")
POOL = Path("data/synthetic/pool")
PROJECTION = Path("data/synthetic/projection")
PROJECTION_REPORTS = Path("reports/projection")
PSEUDO = Path("data/synthetic/pseudo")  # the unlabelled images, labelled by the scorer (pseudo-labelling)
# the unlabelled images, each labelled with the class of its nearest training image (the retrieval baseline)
RETRIEVAL = Path("data/synthetic/retrieval")
# a sampler's source -> its pool
POOLS = {"pool": POOL, "projection": PROJECTION, "pseudo": PSEUDO, "retrieval": RETRIEVAL}
SCORES = Path("data/scores")  # <source>.parquet, <source>_features.npy, <source>_probs.npy
PLAN = Path("data/plan")  # <stage>.json: whether a planned run needs an optional stage (the plan stage)
RL_POLICY = Path("models/rl_policy")
RL_KEEP = Path("data/rl/keep.parquet")  # the RL policy's keep probability per pool image
RL_REPORTS = Path("reports/rl")
SELECTED = Path("data/selected")  # <mode>/<sampler>-<amount>-s<seed>.parquet, written by each run
RUNS = Path("reports/runs")  # <mode>/<run>/metrics.json + summary.csv, one per experiment run
CLASSIFIERS = Path("models/classifiers")  # <mode>/<run>/ model.safetensors + config.json
REPORT = Path("reports")  # summary.md, summary.csv
FIGURES = Path("reports/figures")
