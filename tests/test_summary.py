import json

from ganaug.summary import summary_lines


def test_summary_reads_the_metrics_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert summary_lines() == []
    (tmp_path / "reports/metrics").mkdir(parents=True)
    (tmp_path / "reports/metrics/real-only.json").write_text(json.dumps({"test_accuracy": 0.8123, "n_train": 1000}))
    (tmp_path / "reports/metrics/cas.json").write_text(json.dumps({"test_accuracy": 0.5, "n_train": 1000}))
    lines = summary_lines()
    assert len(lines) == 2 and "0.8123" in lines[0] and lines[1].startswith("synthetic only (CAS)")
