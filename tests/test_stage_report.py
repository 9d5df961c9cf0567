"""`closet-pipeline report`: per-stage count, p50, p95 and share of result documents, and the bottleneck.

Most checks read result documents with known timings, so every number is asserted exactly; one reads
the documents a real LocalPipeline run wrote into a local store."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from closet_pipeline import cli
from closet_pipeline import report as stage_report
from closet_pipeline.local_run import LocalPipeline
from closet_pipeline.report import build_report, load_documents, percentile, split_gcs, summarise
from shared.config import Settings
from shared.documents import ResultDocument

PHOTOS = Path(__file__).parent / "data" / "photos"

# Four processed jobs; remove_background dominates. Sorted per stage the values are 100, 200, 300, 400
# (x10 for remove_background), so p50 = 250 and p95 = 300 + 0.85 * 100 = 385.
KNOWN = [
    {"ingest": 100, "remove_background": 1000, "segment": 200, "expand": 0, "deliver": 300},
    {"ingest": 200, "remove_background": 2000, "segment": 100, "expand": 0, "deliver": 100},
    {"ingest": 300, "remove_background": 3000, "segment": 300, "expand": 0, "deliver": 200},
    {"ingest": 400, "remove_background": 4000, "segment": 400, "expand": 0, "deliver": 400},
]


def _document(job_id: str, timings: dict[str, int], **fields) -> ResultDocument:
    return ResultDocument(job_id=job_id, cloth_id="c", user_id="u", success=fields.pop("success", True),
                          timings=timings, **fields)


@pytest.fixture
def results_folder(tmp_path: Path) -> Path:
    """Result documents as a store and an export folder keep them: nested, one duplicated, plus a
    failed job, a cache hit and a result.json that is not a result document."""
    root = tmp_path / "results"
    for index, timings in enumerate(KNOWN):
        folder = root / "user" / f"cloth{index}" / f"job{index}"
        folder.mkdir(parents=True)
        (folder / "result.json").write_bytes(_document(f"job{index}", timings).to_json())
    (root / "export" / "again").mkdir(parents=True)  # the same job seen twice counts once
    (root / "export" / "again" / "result.json").write_bytes(_document("job0", KNOWN[0]).to_json())
    (root / "failed").mkdir()
    (root / "failed" / "result.json").write_bytes(
        _document("jobF", {"ingest": 50}, success=False, error_code="CORRUPT_IMAGE").to_json())
    (root / "hit").mkdir()
    (root / "hit" / "result.json").write_bytes(_document("jobH", {"ingest": 120}, cache_hit=True).to_json())
    (root / "other").mkdir()
    (root / "other" / "result.json").write_text(json.dumps({"something": "else"}))
    return root


def test_percentile_interpolates_between_ranks_exactly():
    assert percentile([100, 200, 300, 400, 500], 50) == 300
    assert percentile([500, 100, 400, 200, 300], 95) == 480  # order does not matter
    assert percentile([100, 200, 300, 400], 50) == 250
    assert percentile([100, 200, 300, 400], 95) == 385
    assert percentile([7], 95) == 7
    assert math.isnan(percentile([], 50))


def test_summarise_counts_percentiles_and_shares():
    stages, total = summarise(KNOWN)
    assert [s.stage for s in stages] == ["ingest", "remove_background", "segment", "expand", "deliver"]
    by_name = {s.stage: s for s in stages}
    for name in ("ingest", "segment", "deliver"):
        assert (by_name[name].count, by_name[name].p50, by_name[name].p95) == (4, 250, 385)
        assert by_name[name].share == 1000 / 13000
    assert (by_name["remove_background"].p50, by_name["remove_background"].p95) == (2500, 3850)
    assert by_name["remove_background"].share == 10000 / 13000
    assert (by_name["expand"].p50, by_name["expand"].share) == (0, 0)
    # Per-job totals 1600, 2400, 3800, 5200.
    assert (total.count, total.p50, total.p95) == (4, 3100, 3800 + 0.85 * 1400)


def test_report_reads_folders_recursively_and_names_the_bottleneck(results_folder):
    documents, unreadable = load_documents(str(results_folder))
    report = build_report(documents, str(results_folder), unreadable)
    assert (report.documents, report.processed, report.cache_hits, report.failed, report.unreadable) == (6, 4, 1, 1, 1)
    assert report.bottleneck.stage == "remove_background"
    assert report.cache_hit_p50 == 120
    text = stage_report.format_report(report)
    assert "6 result documents" in text and "4 processed, 1 cache hits, 1 failed" in text
    assert "bottleneck: remove_background (76.9 % of the stage time, p50 2500 ms)" in text
    lines = {line.split()[0]: line.split() for line in text.splitlines() if line and line.split()[0] in
             ("ingest", "remove_background", "segment", "expand", "deliver")}
    assert lines["remove_background"][1:] == ["4", "2500", "3850", "76.9%"]
    assert lines["ingest"][1:] == ["4", "250", "385", "7.7%"]
    assert lines["expand"][1:] == ["4", "0", "0", "0.0%"]


def test_report_command_prints_the_table_and_draws_the_chart(results_folder, tmp_path, capsys):
    chart = tmp_path / "stages.png"
    assert cli.main(["report", str(results_folder), "--chart", str(chart)]) == 0
    out = capsys.readouterr().out
    assert "bottleneck: remove_background" in out and "total (per job)" in out
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_command_without_documents_fails(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path)]) == 1
    assert "0 result documents" in capsys.readouterr().out
    assert cli.main(["report", str(tmp_path / "missing")]) == 1


def test_gcs_locations_read_result_objects_under_the_prefix(monkeypatch, results_folder):
    assert split_gcs("gs://closet-results/results/u1/") == ("closet-results", "results/u1/")
    assert split_gcs("gs://closet-results") == ("closet-results", "")
    with pytest.raises(ValueError):
        split_gcs("gs:///x")
    documents = {f"results/u/c{i}/job{i}/result.json": _document(f"job{i}", t).to_json() for i, t in enumerate(KNOWN)}
    documents["results/u/c0/job0/cutout.png"] = b"\x89PNG"
    seen = {}

    class Blob:
        def __init__(self, name):
            self.name = name

        def download_as_bytes(self):
            return documents[self.name]

    class Client:
        def __init__(self, project=None, credentials=None, client_options=None):
            seen["endpoint"] = (client_options or {}).get("api_endpoint")

        def list_blobs(self, bucket, prefix=None):
            seen["listed"] = (bucket, prefix)
            return [Blob(name) for name in documents if name.startswith(prefix or "")]

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:4443")
    monkeypatch.setattr("google.cloud.storage.Client", Client)
    loaded, unreadable = load_documents("gs://closet-results/results/u/")
    assert seen == {"endpoint": "http://127.0.0.1:4443", "listed": ("closet-results", "results/u/")}
    assert sorted(d.job_id for d in loaded) == ["job0", "job1", "job2", "job3"] and unreadable == 0


def test_report_on_documents_of_a_real_local_run(tmp_path):
    store = tmp_path / "store"
    pipeline = LocalPipeline(Settings(expand_policy="never"), store)
    try:
        photo = PHOTOS / "ba9cd233-fff5-44f2-8569-b6ba0667d6a9.jpg"
        document = pipeline.process_bytes(photo.read_bytes(), "shirt.jpg")
    finally:
        pipeline.close()
    assert document.success
    documents, unreadable = load_documents(str(store))  # results/ and cache/ hold the same job: counted once
    report = build_report(documents, str(store), unreadable)
    assert (report.documents, report.processed, report.failed) == (1, 1, 0)
    by_name = {s.stage: s for s in report.stages}
    assert set(by_name) == set(document.timings)
    for stage, ms in document.timings.items():
        assert (by_name[stage].count, by_name[stage].p50, by_name[stage].p95) == (1, ms, ms)
    assert report.bottleneck.stage == max(document.timings, key=document.timings.get)
    assert report.total.p50 == sum(document.timings.values())
