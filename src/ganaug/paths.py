"""Where each artifact lives, relative to the project root (the same paths dvc.yaml names)."""

from pathlib import Path

RAW = Path("data/raw")
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
CAS_REPORTS = Path("reports/cas")
