import json

from ganaug.summary import summary_lines


def test_summary_reads_the_metrics_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert summary_lines() == []
    (tmp_path / "reports/metrics").mkdir(parents=True)
    (tmp_path / "reports/metrics/real-only.json").write_text(json.dumps({"test_accuracy": 0.8123, "n_train": 1000}))
    (tmp_path / "reports/metrics/summary.json").write_text(
        json.dumps(
            {
                "real_only": 0.8,
                "best_augmented": {"row": "cl-sam 1x", "accuracy": 0.81},
                "best_vs_real_only": {"diff": 0.01, "ci": [-0.005, 0.025], "n": 3, "verdict": "no clear difference"},
            }
        )
    )
    (tmp_path / "reports/summary.json").write_text(
        json.dumps(
            {
                "comparisons": [
                    {"row": "cl-sam 1x", "reference": "real only", "verdict": "no clear difference"},
                    {"row": "random 1x", "reference": "real only", "verdict": "worse"},
                ]
            }
        )
    )
    (tmp_path / "reports/summary.md").write_text("| run | accuracy |\n")
    lines = summary_lines()
    assert "0.8123" in lines[0]
    assert lines[1] == (
        "highest augmented mean cl-sam 1x: 0.8100 vs real-only 0.8000 "
        "(+1.00 points, 95% CI [-0.50, +2.50], 3 seeds): no clear difference"
    )
    assert lines[2] == "verdicts (Holm-adjusted): random 1x vs real only: worse"
    assert lines[-1] == "| run | accuracy |"
