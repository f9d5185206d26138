"""The training-budget study's table and choice (the study itself trains real-only: `make budget`)."""

from __future__ import annotations

import pandas as pd
import pytest

from ganaug.budget import choose_epochs, per_budget, to_markdown


def test_budget_choice_is_the_smallest_within_tolerance_of_the_best():
    runs = pd.DataFrame(
        {
            "epochs": [6, 6, 12, 12, 20, 20],
            "seed": [0, 1] * 3,
            "steps": [90, 90, 180, 180, 300, 300],
            "val_accuracy": [0.70, 0.72, 0.795, 0.80, 0.80, 0.801],
        }
    )
    table = per_budget(runs)
    assert table["mean"].tolist() == pytest.approx([0.71, 0.7975, 0.8005])
    assert choose_epochs(table, 0.005) == 12 and choose_epochs(table, 0.001) == 20
    assert "still rising" in to_markdown(table, 20, 0.001) and "still rising" not in to_markdown(table, 12, 0.005)
