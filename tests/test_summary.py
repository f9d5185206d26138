import json

from ganaug.summary import summary_lines


def test_summary_reads_the_metrics_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert summary_lines() == []
    (tmp_path / "reports/metrics").mkdir(parents=True)
    (tmp_path / "reports/metrics/real-only.json").write_text(json.dumps({"test_accuracy": 0.8123, "n_train": 1000}))
    (tmp_path / "reports/metrics/summary.json").write_text(json.dumps(
        {"real_only": 0.8, "best_augmented": {"row": "cl-sam 1x", "accuracy": 0.81}, "best_minus_real_only": 0.01}))
    (tmp_path / "reports/summary.md").write_text("| run | accuracy |\n")
    lines = summary_lines()
    assert "0.8123" in lines[0]
    assert lines[1].startswith("best augmentation") and "cl-sam 1x: 0.8100 vs real-only 0.8000 (+1.00 points)" in lines[1]
    assert lines[-1] == "| run | accuracy |"
