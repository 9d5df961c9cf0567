"""README tells the truth about configuration, and the benchmark runs (a smoke run on one photo)."""

from __future__ import annotations

import shutil
from pathlib import Path

from closet_pipeline.bench import run as bench
from shared.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text()
    missing = [f"CLOSET_{name.upper()}" for name in Settings.model_fields if f"CLOSET_{name.upper()}" not in readme]
    assert not missing, f"README.md lacks {missing}: paste `closet-pipeline config` into it"


def test_benchmark_smoke_run_on_one_photo(tmp_path):
    """`--quick` on one example: a 12 MP phone photo, in-process cold and warm, the floors, ingest,
    the old way's encoding, a cache hit and the expand policy on one photo (without the team's
    fixtures, the set falls back to the repository's photos and says so); no topology or peer."""
    examples = tmp_path / "examples"
    examples.mkdir()
    shutil.copy(ROOT / "examples" / "t-shirt.jpg", examples / "t-shirt.jpg")
    report = tmp_path / "BENCHMARKS.md"
    assert bench.main(["--quick", "--examples", str(examples), "--out", str(report), "--extra-runs", "1",
                       "--expand-limit", "1", "--photo-cache", str(tmp_path / "photos"),
                       "--fixtures", str(tmp_path / "no-fixtures")]) == 0
    text = report.read_text()
    assert "| remove_background |" in text and "bare onnxruntime inference" in text
    assert "## Targets" in text and "| end to end in-process, warm <= 1.1 x bare inference + 200 ms |" in text
    assert "old: full-resolution PNG of the cut-out, base64" in text and "tests/data/photos" in text
    assert "not measured: skipped" in text  # the topology and the peer are not run by --quick
    assert (tmp_path / "BENCHMARKS.png").read_bytes()[:4] == b"\x89PNG"
    assert [p.suffix for p in (tmp_path / "photos").iterdir()] == [".jpg"]  # one 12 MP JPEG was made
