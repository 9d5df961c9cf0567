"""One photo's way through the topology, hop by hop, from the functions' `hop` log lines
(shared/runtime/trace.py): how long each push waited, how long each function took to send the job
on, and how much of that was the stage itself, storage calls and publishing.

The path is timed on the machine's clock: the upload stored (the bench's PUT returned), each function
receiving its message (`receivedAt`, `waitedMs` after its publish), decoding it (`decodedMs`) and
sending the next one (`forwardedMs`), and the result seen by the app (the bench's subscriber). What a function does after
forwarding (progress events, outcome markers) is off the path but keeps its instance busy: it is the
`after` column.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from datetime import datetime


def read_hops(log_texts: dict[str, str]) -> list[dict]:
    """Every hop line in the functions' logs ({function: log text})."""
    hops = []
    for text in log_texts.values():
        for line in text.splitlines():
            if '"hop"' not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry.get("hop"), dict):
                hops.append(entry["hop"])
    return hops


@dataclass(frozen=True)
class Row:
    hop: str
    waited_ms: float | None = None  # publish to push delivery
    decode_ms: float | None = None  # received to the event decoded
    forward_ms: float | None = None  # received to the next message (or the result) published
    stage_ms: float | None = None
    storage: tuple[int, float] | None = None  # calls, ms (all of the delivery's)
    publish: tuple[int, float] | None = None
    after_ms: float | None = None  # busy after forwarding

    @property
    def path_ms(self) -> float:
        return (self.waited_ms or 0.0) + (self.forward_ms or 0.0)


def job_path(hops: list[dict], job_id: str, stage_order: list[str], uploaded_at: datetime,
             result_at: datetime) -> list[Row]:
    """The rows of one job: the notification, one per function on its path (for a stage with many
    deliveries, as for per-garment stages, the one that forwarded last), the result's way out."""
    mine = [h for h in hops if h.get("jobId") == job_id and not h.get("warmUp") and "forwardedMs" in h]
    rows: list[Row] = []
    last_out: datetime | None = None
    for stage in stage_order:
        deliveries = [h for h in mine if h.get("function") == stage]
        if not deliveries:
            continue
        chosen = max(deliveries, key=lambda h: _out(h))
        received = datetime.fromisoformat(chosen["receivedAt"])
        if not rows:
            published = received.timestamp() - chosen.get("waitedMs", 0.0) / 1000
            rows.append(Row("notification: upload stored to its message published",
                            forward_ms=round((published - uploaded_at.timestamp()) * 1000, 1)))
        rows.append(Row(
            stage, waited_ms=chosen.get("waitedMs"), decode_ms=chosen.get("decodedMs"), forward_ms=chosen["forwardedMs"],
            stage_ms=chosen.get("stageMs"),
            storage=(chosen.get("storageCalls", 0), chosen.get("storageMs", 0.0)),
            publish=(chosen.get("publishCalls", 0), chosen.get("publishMs", 0.0)),
            after_ms=round(chosen["totalMs"] - chosen["forwardedMs"], 1)))
        last_out = _out(chosen)
    if last_out is not None:
        rows.append(Row("result: published to seen by the app",
                        forward_ms=round((result_at.timestamp() - last_out.timestamp()) * 1000, 1)))
    return rows


def median_rows(paths: list[list[Row]]) -> list[Row]:
    """Column medians over jobs that took the same path (same hops in the same order)."""
    if not paths:
        return []
    names = [r.hop for r in paths[0]]
    columns = zip(*[p for p in paths if [r.hop for r in p] == names])
    return [Row(name, _median(r.waited_ms for r in rows), _median(r.decode_ms for r in rows),
                _median(r.forward_ms for r in rows), _median(r.stage_ms for r in rows), _median_pair(r.storage for r in rows),
                _median_pair(r.publish for r in rows), _median(r.after_ms for r in rows))
            for name, rows in zip(names, columns)]


def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 1) if values else None


def _median_pair(pairs) -> tuple[int, float] | None:
    pairs = [p for p in pairs if p is not None]
    if not pairs:
        return None
    return round(statistics.median(c for c, _ in pairs)), round(statistics.median(ms for _, ms in pairs), 1)


def _out(hop: dict) -> datetime:
    """When a delivery forwarded the job (received + forwardedMs)."""
    received = datetime.fromisoformat(hop["receivedAt"])
    return datetime.fromtimestamp(received.timestamp() + hop["forwardedMs"] / 1000, received.tzinfo)
