"""`closet-pipeline report PATH`: where the time goes, read from result documents.

PATH is a local folder (every `result.json` under it, recursively) or `gs://bucket/prefix` (every
`.../result.json` object under the prefix; through fake-gcs-server when STORAGE_EMULATOR_HOST is
set). Documents are de-duplicated by job id (a local store keeps the same result under results/,
the export folder and the cache). The stage table covers the processed jobs: failed jobs and cache
hits are counted but left out of it, since they did not run every stage.

Per stage: how many jobs timed it, p50 and p95 in milliseconds, and its share of all stage time;
the stage with the largest share is the bottleneck. Percentiles interpolate linearly between the
two nearest ranks (numpy's default method, computed exactly), so small samples give checkable numbers.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Mapping

from shared.documents import ResultDocument
from shared.topology import load as load_topology

STAGE_ORDER = load_topology().stage_names


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0-100), interpolated linearly between the two closest ranks (numpy's
    default method), computed in exact fractions so that small samples give exact numbers; nan when
    there is no value."""
    ordered = sorted(Fraction(v) for v in values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * Fraction(q) / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


@dataclass(frozen=True)
class StageStats:
    stage: str
    count: int
    p50: float
    p95: float
    total_ms: float
    share: float  # of all stage time, 0..1


@dataclass
class Report:
    source: str
    documents: int = 0
    processed: int = 0
    cache_hits: int = 0
    failed: int = 0
    unreadable: int = 0
    stages: list[StageStats] = field(default_factory=list)
    total: StageStats | None = None  # the per-job sum of its stage times
    cache_hit_p50: float = math.nan

    @property
    def bottleneck(self) -> StageStats | None:
        timed = [s for s in self.stages if s.total_ms > 0]
        return max(timed, key=lambda s: s.total_ms) if timed else None


def ordered_stages(names: Iterable[str]) -> list[str]:
    """The pipeline's stages in flow order, then any other timed step by name."""
    names = set(names)
    return [s for s in STAGE_ORDER if s in names] + sorted(names - set(STAGE_ORDER))


def summarise(timings: Iterable[Mapping[str, float]]) -> tuple[list[StageStats], StageStats | None]:
    """Per-stage statistics over jobs' `timings` dicts, and the same for each job's total."""
    timings = list(timings)
    values: dict[str, list[float]] = {}
    for one in timings:
        for stage, ms in one.items():
            values.setdefault(stage, []).append(float(ms))
    grand = sum(sum(v) for v in values.values())
    stages = [
        StageStats(stage, len(values[stage]), percentile(values[stage], 50), percentile(values[stage], 95),
                   sum(values[stage]), sum(values[stage]) / grand if grand else 0.0)
        for stage in ordered_stages(values)
    ]
    totals = [float(sum(one.values())) for one in timings]
    total = StageStats("total", len(totals), percentile(totals, 50), percentile(totals, 95), sum(totals),
                       1.0 if grand else 0.0) if totals else None
    return stages, total


def build_report(documents: Iterable[ResultDocument], source: str = "", unreadable: int = 0) -> Report:
    unique: dict[str, ResultDocument] = {}
    for document in documents:
        unique.setdefault(document.job_id, document)
    report = Report(source=source, documents=len(unique), unreadable=unreadable)
    processed, hits = [], []
    for document in unique.values():
        if not document.success:
            report.failed += 1
        elif document.cache_hit:
            report.cache_hits += 1
            hits.append(float(sum(document.timings.values())))
        else:
            processed.append(document.timings)
    report.processed = len(processed)
    report.stages, report.total = summarise(processed)
    report.cache_hit_p50 = percentile(hits, 50)
    return report


# -- reading documents ------------------------------------------------------------------------------
def load_documents(location: str) -> tuple[list[ResultDocument], int]:
    """The result documents at a local folder or gs://bucket/prefix, and how many files did not parse."""
    if location.startswith("gs://"):
        raw = _read_gcs(location)
    else:
        root = Path(location)
        if not root.exists():
            raise FileNotFoundError(f"{location} does not exist")
        files = [root] if root.is_file() else sorted(root.rglob("result.json"))
        raw = [path.read_bytes() for path in files]
    documents, unreadable = [], 0
    for data in raw:
        try:
            documents.append(ResultDocument.model_validate_json(data))
        except ValueError:
            unreadable += 1
    return documents, unreadable


def split_gcs(location: str) -> tuple[str, str]:
    """gs://bucket/some/prefix -> ("bucket", "some/prefix")."""
    bucket, _, prefix = location.removeprefix("gs://").partition("/")
    if not bucket:
        raise ValueError(f"{location} names no bucket")
    return bucket, prefix


def _read_gcs(location: str) -> list[bytes]:
    from shared.adapters.blobstore.gcs import storage_client

    bucket, prefix = split_gcs(location)
    project = os.environ.get("CLOSET_PROJECT_ID", "closet-local")
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    client = storage_client(project, emulator=emulator if not emulator or emulator.startswith("http")
                            else f"http://{emulator}")
    return [blob.download_as_bytes() for blob in client.list_blobs(bucket, prefix=prefix or None)
            if blob.name == "result.json" or blob.name.endswith("/result.json")]


# -- output -----------------------------------------------------------------------------------------
def format_report(report: Report) -> str:
    lines = [
        f"{report.documents} result documents in {report.source}: {report.processed} processed, "
        f"{report.cache_hits} cache hits, {report.failed} failed"
        + (f" ({report.unreadable} result.json files were not result documents)" if report.unreadable else ""),
    ]
    if not report.stages:
        lines.append("no processed job to report stage times of")
        return "\n".join(lines)
    lines += ["", f"{'stage':<20} {'count':>6} {'p50 ms':>9} {'p95 ms':>9} {'share':>7}"]
    for s in report.stages:
        lines.append(f"{s.stage:<20} {s.count:>6} {s.p50:>9.0f} {s.p95:>9.0f} {100 * s.share:>6.1f}%")
    if report.total is not None:
        t = report.total
        lines.append(f"{'total (per job)':<20} {t.count:>6} {t.p50:>9.0f} {t.p95:>9.0f} {100 * t.share:>6.1f}%")
    if report.cache_hits:
        lines.append(f"cache hits: p50 {report.cache_hit_p50:.0f} ms (not in the table)")
    neck = report.bottleneck
    if neck is not None:
        lines += ["", f"bottleneck: {neck.stage} ({100 * neck.share:.1f} % of the stage time, p50 {neck.p50:.0f} ms)"]
    return "\n".join(lines)


def draw_chart(report: Report, path: Path) -> None:
    """Horizontal bars of each stage's p50 with its p95 as a whisker, labelled with its share."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = report.stages
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.55 * max(1, len(stages))))
    neck = report.bottleneck
    names = [s.stage for s in stages]
    p50 = [s.p50 for s in stages]
    whisker = [max(0.0, s.p95 - s.p50) for s in stages]
    colors = ["#d62728" if neck is not None and s.stage == neck.stage else "#1f77b4" for s in stages]
    ax.barh(names, p50, xerr=[[0] * len(stages), whisker], color=colors, capsize=4)
    for y, s in enumerate(stages):
        ax.text(s.p95 if not math.isnan(s.p95) else s.p50, y, f"  {s.p50:.0f} ms p50, {100 * s.share:.1f} %",
                va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("milliseconds (bar: p50, whisker: p95)")
    title = f"Stage times of {report.processed} jobs ({report.source})"
    if neck is not None:
        title += f"; bottleneck: {neck.stage}"
    ax.set_title(title, fontsize=9)
    ax.set_xlim(0, max([s.p95 for s in stages if not math.isnan(s.p95)] + [1.0]) * 1.45)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_report(location: str, chart: Path | None = None) -> int:
    """The `report` command: print the table (and draw the chart); 1 when nothing could be read."""
    try:
        documents, unreadable = load_documents(location)
    except Exception as exc:  # a missing folder or bucket, no credentials, the emulator down
        print(f"closet-pipeline report: {exc}", file=sys.stderr)
        return 1
    report = build_report(documents, location, unreadable)
    print(format_report(report))
    if not report.documents:
        return 1
    if chart is not None:
        draw_chart(report, chart)
        print(f"chart: {chart}")
    return 0
