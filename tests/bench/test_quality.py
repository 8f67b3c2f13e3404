"""`facewright bench quality` runs its protocol end to end and keeps its figures; `bench all` runs every bench."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from facewright.bench import suite
from facewright.bench.quality import QualityRow, append_row, budget_text, quality_preset, read_rows
from facewright.cli import main
from facewright.errors import InputError, OptionError


@pytest.mark.slow
def test_bench_quality_appends_a_row_and_keeps_the_score_report(tmp_path, capsys, few_score_samples):
    results = tmp_path / "bench" / "quality.jsonl"
    # The cpu protocol with a 2-step budget: every stage runs, the figures are those of an untrained model.
    code = main(["bench", "quality", "--steps", "2", "--results", str(results), "--device", "cpu",
                 "--train", "lr=1e-3,warmup=1", "--swap", "detail=0.5"])
    printed = capsys.readouterr().out
    assert code == 0 and "bench quality: cpu (demo, lr=0.001, warmup=1, 2 steps, seed 0)" in printed
    assert "swap (detail=0.5)" in printed and "identity:" in printed
    [row] = read_rows(results)
    assert row.steps == 2 and row.budget == "2 steps" and row.train_preset == "demo" and row.seed == 0
    assert row.options == {"lr": 1e-3, "warmup": 1} and row.swap == {"detail": 0.5}
    assert row.device.startswith("cpu") and f"appended to {results}" in printed
    metrics = row.metrics
    assert {"recognized_as_source", "expression", "pose_error", "flicker_ratio", "seam", "background",
            "sharpness"} <= set(metrics)
    assert metrics["swapped_frames"] > 0.8 and 0 <= metrics["recognized_as_source"] <= 1
    # The kept report: figures and plots. The sheet of faces stays with the temporary workspace's consents.
    kept = Path(row.report)
    assert kept.parent == results.parent and {p.name for p in kept.iterdir()} == {"score.json", "score.png"}
    report = json.loads((kept / "score.json").read_text())
    assert report["summary"]["coverage"]["frames"] == 72 and "facewright-bench-quality" not in json.dumps(report)
    append_row(results, dataclasses.replace(row, steps=3))  # later runs are appended, earlier ones kept
    assert [r.steps for r in read_rows(results)] == [2, 3]
    capsys.readouterr()
    assert main(["bench", "quality", "--history", "--results", str(results)]) == 0
    history = capsys.readouterr().out.splitlines()
    assert len(history) == 2 and "trained 3 steps" in history[1] and "pose error" in history[1]


def test_the_results_file_survives_a_torn_last_line_and_names_a_bad_one(tmp_path):
    results = tmp_path / "quality.jsonl"
    row = QualityRow("2026-11-29T00:00:00+00:00", "0.1", "cpu", "demo", "2 steps", 2, "cpu", 1.0, 1.0, None, 1.0,
                     {"pose_error": 3.0}, str(tmp_path / "kept"), options={"batch": 4})
    results.write_text(json.dumps({**dataclasses.asdict(row), "added_later": 1}))  # no newline at the end
    append_row(results, row)
    rows = read_rows(results)
    assert rows == [row, row] and "batch=4" in rows[0].row() and "pose error 3.0 deg" in rows[0].row()
    results.write_text(results.read_text() + "{not json\n")
    with pytest.raises(InputError, match="line 3 is not a bench quality row"):
        read_rows(results)
    assert main(["bench", "quality", "--history", "--results", str(results)]) == 2


def test_quality_presets_and_budgets():
    assert quality_preset("cpu", None, None) == ("demo", 600, 0.0)
    assert quality_preset("gpu", None, None) == ("gpu-256", 0, 10.0)
    assert quality_preset("quick", None, None) == ("quick", 0, 10.0)
    assert quality_preset("gpu", None, 3.0) == ("gpu-256", 0, 3.0)
    assert quality_preset("cpu", 50, None) == ("demo", 50, 0.0)
    assert budget_text(600, 0.0) == "600 steps" and budget_text(0, 10.0) == "10 minutes"
    assert budget_text(600, 2.5) == "600 steps or 2.5 minutes, whichever ends first"
    with pytest.raises(OptionError, match="unknown quality preset"):
        quality_preset("tpu", None, None)
    with pytest.raises(OptionError):
        quality_preset("cpu", -1, None)


def test_bench_all_prints_every_benchmark_and_the_quality_row(monkeypatch, capsys):
    class Row:
        def __init__(self, text):
            self.text = text

        def row(self):
            return self.text

        def rows(self):
            return [self.text]

    calls = []

    def fake(name, result):
        def run(**kwargs):
            calls.append((name, kwargs.get("preset"), kwargs.get("device")))
            return result
        return run

    monkeypatch.setattr(suite, "bench_io", fake("io", [Row("io row")]))
    monkeypatch.setattr(suite, "bench_extract", fake("extract", Row("extract row")))
    monkeypatch.setattr(suite, "bench_train", fake("train", Row("train row")))
    monkeypatch.setattr(suite, "bench_swap", fake("swap", ([Row("swap row")], [])))
    monkeypatch.setattr(suite, "bench_quality", fake("quality", [Row("quality row")]))
    assert main(["bench", "all", "--preset", "gpu", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    for name in ("io", "extract", "train", "swap", "quality"):
        assert f"bench {name}:\n  {name} row" in printed
    assert ("train", "gpu-256", "cpu") in calls and ("quality", "gpu", "cpu") in calls
