"""README tells the truth about configuration, and the benchmark runs (a smoke run on one photo)."""

from __future__ import annotations

import shutil
from pathlib import Path

from shared import bench
from shared.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text()
    missing = [f"CLOSET_{name.upper()}" for name in Settings.model_fields if f"CLOSET_{name.upper()}" not in readme]
    assert not missing, f"README.md lacks {missing}: paste `closet-pipeline config` into it"


def test_benchmark_smoke_run_on_one_photo(tmp_path):
    examples = tmp_path / "examples"
    examples.mkdir()
    shutil.copy(ROOT / "examples" / "t-shirt.jpg", examples / "t-shirt.jpg")
    report = tmp_path / "BENCHMARKS.md"
    assert bench.main(["--examples", str(examples), "--runs", "1", "--out", str(report)]) == 0
    text = report.read_text()
    assert "| remove_background |" in text and "bare onnxruntime inference" in text
