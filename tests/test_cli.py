"""`closet-pipeline process`, as a user runs it: folders of results, failures as documents."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "closet_pipeline.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_process_writes_results_cutout_crops_and_contact_sheet(tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not a photo")
    done = run_cli("process", str(ROOT / "examples" / "t-shirt.jpg"), str(bad), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    good = tmp_path / "out" / "t-shirt"
    result = json.loads((good / "result.json").read_text())
    assert result["success"] and result["removedBgImageUrl"] == "cutout.png"
    cutout = Image.open(good / "cutout.png")
    assert cutout.mode == "RGBA" and cutout.size == Image.open(ROOT / "examples" / "t-shirt.jpg").size
    for item in result["allSegmentedItems"]:
        assert (good / item["url"]).is_file() and (good / item["thumbnailUrl"]).is_file()
    assert Image.open(good / "contact-sheet.png").width > cutout.width
    failed = json.loads((tmp_path / "out" / "notes" / "result.json").read_text())
    assert not failed["success"] and failed["errorCode"] == "UNSUPPORTED_FORMAT"
    assert "background" in done.stderr and "(local)" in done.stderr  # the per-stage table


def test_without_a_model_it_stops_and_says_how_to_fix(tmp_path):
    done = run_cli("process", str(ROOT / "examples" / "t-shirt.jpg"), "--out", str(tmp_path / "out"),
                   env={"CLOSET_MODEL_DIR": str(tmp_path / "empty")})
    assert done.returncode == 2
    assert "closet-pipeline fetch-model" in done.stderr


def test_bad_configuration_is_refused_at_start(tmp_path):
    done = run_cli("config", env={"CLOSET_EXPAND_POLICY": "sometimes"})
    assert done.returncode == 2 and "expand_policy" in done.stderr
