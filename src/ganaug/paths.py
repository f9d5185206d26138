"""Where each artifact lives, relative to the project root (the same paths dvc.yaml names)."""

from pathlib import Path

RAW = Path("data/raw")
PREPARED = Path("data/prepared")
SCORER = Path("models/scorer")
METRICS = Path("reports/metrics")
SCORER_REPORTS = Path("reports/scorer")
