"""`make soak`: many uploads within a minute through the emulator topology, and what came back.

    .venv/bin/python -m closet_pipeline.dev.soak --count 60 --over 60 --fresh 4 --distinct 2 --many 1 --timeout 900

Starts the whole local topology (closet_pipeline/dev/topology.py: Pub/Sub emulator, fake-gcs-server, one
functions-framework server per function, all on 127.0.0.1, behind the strict stand-ins) with a
signed-webhook receiver, then uploads `--count` photos spread evenly over `--over` seconds and follows
the results topic. Every stage message is published a second time (Pub/Sub's at-least-once delivery,
made certain), and `--many` of the fresh uploads are one photo of eight garments (tiled). It reports
results received, lost (no result by the deadline), duplicated (more than one result for a job),
overwritten (a stored result.json that is not what was published), failed jobs, throughput,
end-to-end p50/p95 (upload start -> result on the results topic), the deepest backlog (uploads sent
minus jobs answered, at its worst) and the webhook's count.

What the uploads are, so the figures can be read honestly: two cores run IS-Net at roughly one photo
every 5-10 s, so 200 full runs in a minute cannot be absorbed and would measure only the queue.
Instead ~10 distinct photos (5 bundled photos and their mirror images, each re-encoded with a tiny
per-run change so no earlier run's cache serves them) are processed once before the clock starts
(priming, not counted); `--fresh` of the timed uploads carry bytes never seen before (the photo
re-encoded with a per-upload change: a full pipeline run with the model) and the others repeat a
primed photo (served by ingest from the result cache). The cache-hit share is measured from the
result documents and printed. `--fresh N` with N = --count makes every upload a full run.

Bounded: at most 2000 uploads, 600 s of sending and 3600 s in all; everything binds 127.0.0.1 and
every process started is stopped by its id at the end. `run_soak` also runs against a topology that
is already up (tests/test_reliability.py runs a small soak in `make test`).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from PIL import Image, ImageOps

from closet_pipeline import REPO_ROOT

PHOTO_DIRS = (REPO_ROOT / "examples", REPO_ROOT / "tests" / "data" / "photos")
MAX_COUNT, MAX_OVER_S, MAX_TIMEOUT_S = 2000, 600.0, 3600.0


# -- the photos ----------------------------------------------------------------------------------
def base_photos(limit: int = 10) -> list[Image.Image]:
    """Up to `limit` distinct RGB photos: the bundled ones (byte-identical copies once) and their mirrors."""
    seen, photos = set(), []
    for folder in PHOTO_DIRS:
        for path in sorted(folder.glob("*.jpg")):
            data = path.read_bytes()
            if data in seen:
                continue
            seen.add(data)
            with Image.open(io.BytesIO(data)) as image:
                photos.append(ImageOps.exif_transpose(image).convert("RGB"))
    photos += [ImageOps.mirror(p) for p in photos]
    if not photos:
        raise SystemExit("no photos found under examples/ or tests/data/photos/")
    return photos[:limit]


def tiled(photos: list[Image.Image], count: int = 8, side: int = 300, gap: int = 60) -> Image.Image:
    """`count` garment photos tiled apart on white, four to a row: a photo of many garments."""
    columns = min(4, count)
    rows = -(-count // columns)
    canvas = Image.new("RGB", (columns * side + (columns + 1) * gap, rows * side + (rows + 1) * gap), "white")
    for index in range(count):
        tile = photos[index % len(photos)].copy()
        tile.thumbnail((side, side))
        canvas.paste(tile, (gap + (index % columns) * (side + gap), gap + (index // columns) * (side + gap)))
    return canvas


def variant(photo: Image.Image, tag: int, salt: bytes) -> bytes:
    """The photo as JPEG with one corner pixel set from (salt, tag): other bytes, the same picture."""
    image = photo.copy()
    value = hashlib.sha256(salt + str(tag).encode()).digest()[:3]
    image.putpixel((tag % 4, 0), tuple(value))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


# -- the report ----------------------------------------------------------------------------------
@dataclass
class SoakReport:
    count: int
    fresh: int
    distinct: int
    over_s: float
    sent: int = 0
    received: int = 0  # jobs with at least one result
    lost: int = 0  # jobs without a result at the deadline
    duplicated: int = 0  # jobs with more than one result
    extra_results: int = 0  # results beyond the first, all jobs together
    failed: int = 0  # results with success=false
    error_codes: dict[str, int] = field(default_factory=dict)
    cache_hits: int = 0
    send_seconds: float = 0.0
    elapsed_seconds: float = 0.0  # first upload -> last result
    throughput_per_s: float = 0.0
    p50_s: float = 0.0
    p95_s: float = 0.0
    max_s: float = 0.0
    deepest_backlog: int = 0
    many_garments: int = 0  # uploads that were one photo of eight garments
    items_per_many: list[int] = field(default_factory=list)  # garments found in each of them
    duplicated_messages: int = 0  # stage messages published a second time (every one, with --duplicate)
    overwritten: int = 0  # jobs whose stored result.json is not the result that was published first
    webhook_jobs: int | None = None
    webhook_duplicated: int | None = None
    webhook_unverified: int | None = None
    prime_seconds: float = 0.0

    @property
    def cache_hit_share(self) -> float:
        return self.cache_hits / self.received if self.received else 0.0

    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.failed == 0 and self.overwritten == 0

    def table(self) -> str:
        rows = [
            ("uploads sent", f"{self.sent} over {self.send_seconds:.1f} s (target {self.over_s:g} s)"),
            ("fresh bytes / cache repeats", f"{self.fresh} / {self.sent - self.fresh} (distinct primed photos: {self.distinct})"),
            ("results received", str(self.received)),
            ("lost", str(self.lost)),
            ("duplicated", f"{self.duplicated} jobs ({self.extra_results} extra results)"),
            ("failed jobs", f"{self.failed} {self.error_codes or ''}".strip()),
            ("cache-hit share", f"{self.cache_hit_share:.0%} ({self.cache_hits} of {self.received})"),
            ("throughput", f"{self.throughput_per_s:.2f} results/s over {self.elapsed_seconds:.1f} s"),
            ("end to end p50 / p95 / max", f"{self.p50_s:.2f} s / {self.p95_s:.2f} s / {self.max_s:.2f} s"),
            ("deepest backlog", f"{self.deepest_backlog} uploads without a result"),
            ("eight-garment photos", f"{self.many_garments} (garments found: {self.items_per_many or '-'})"),
            ("stage messages duplicated", str(self.duplicated_messages)),
            ("results overwritten", str(self.overwritten)),
        ]
        if self.webhook_jobs is not None:
            rows.append(("webhook", f"{self.webhook_jobs} jobs, {self.webhook_duplicated} duplicated, "
                                    f"{self.webhook_unverified} bad signatures"))
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


# -- the run ---------------------------------------------------------------------------------------
class _ResultTap:
    """Its own subscription on the results topic: arrival time of every result, duplicates included."""

    def __init__(self, topo, name: str) -> None:
        from google.cloud import pubsub_v1

        self.arrivals: dict[str, list[tuple[float, dict]]] = {}
        self.cond = threading.Condition()
        self.client = pubsub_v1.SubscriberClient()
        self.path = topo.pubsub.add_pull_subscription(topo.results_topic, name)
        self.future = self.client.subscribe(self.path, self._on_message)

    def _on_message(self, message) -> None:
        now = time.monotonic()
        try:
            body = json.loads(message.data)
        except ValueError:
            body = {}
        message.ack()
        with self.cond:
            self.arrivals.setdefault(body.get("jobId", ""), []).append((now, body))
            self.cond.notify_all()

    def answered(self, job_ids) -> int:
        with self.cond:
            return sum(1 for j in job_ids if j in self.arrivals)

    def close(self) -> None:
        try:
            self.future.cancel()
            self.future.result(timeout=5)
        except Exception:
            pass
        try:
            self.client.delete_subscription(request={"subscription": self.path})
        except Exception:
            pass
        self.client.close()


class _Duplicator:
    """Publishes every stage message once more, as Pub/Sub's at-least-once delivery may: a pull
    subscription on each stage topic republishes what it sees, marked so copies are not copied again."""

    MARK = "soakDuplicate"

    def __init__(self, topo, run: str) -> None:
        from google.cloud import pubsub_v1

        self.topo, self.count, self.lock = topo, 0, threading.Lock()
        self.client = pubsub_v1.SubscriberClient()
        self.paths, self.futures = [], []
        for stage in topo.stages:
            name = f"soak-dup-{stage['name'].replace('_', '-')}-{run}"
            path = topo.pubsub.add_pull_subscription(stage["topic"], name)
            self.paths.append(path)
            self.futures.append(self.client.subscribe(path, lambda m, t=stage["topic"]: self._copy(t, m)))

    def _copy(self, topic: str, message) -> None:
        message.ack()
        if message.attributes.get(self.MARK):  # a copy is not copied again (a warm-up copy only warms)
            return
        self.topo.pubsub.publish(topic, message.data, {**dict(message.attributes), self.MARK: "1"})
        with self.lock:
            self.count += 1

    def close(self) -> None:
        for future in self.futures:
            future.cancel()
        for path in self.paths:
            try:
                self.client.delete_subscription(request={"subscription": path})
            except Exception:
                pass
        self.client.close()


def run_soak(topo, *, count: int = 200, over_s: float = 60.0, fresh: int = 10, distinct: int = 10,
             timeout_s: float = 900.0, user_id: str = "soak", webhook=None, grace_s: float = 3.0,
             repeat_of: list[bytes] | None = None, many: int = 0, duplicate: bool = False,
             log=lambda message: print(message, file=sys.stderr, flush=True)) -> SoakReport:
    """Prime `distinct` photos, then upload `count` photos over `over_s` seconds through a started
    LocalTopology and follow their results until all are in or `timeout_s` has passed.
    `repeat_of`: photos this topology has already processed, repeated instead of priming new ones.
    `many`: that many of the fresh uploads are one photo of eight garments. `duplicate`: every stage
    message is published a second time."""
    if not 1 <= count <= MAX_COUNT:
        raise ValueError(f"count must be 1..{MAX_COUNT}")
    over_s = min(max(0.0, over_s), MAX_OVER_S)
    timeout_s = min(timeout_s, MAX_TIMEOUT_S)
    fresh = min(max(0, fresh), count)
    run = uuid.uuid4().hex[:8]
    salt = run.encode()
    photos = base_photos(max(1, distinct))
    repeats = list(repeat_of or []) if fresh < count else []
    primed = [variant(p, -1 - i, salt) for i, p in enumerate(photos)] if fresh < count and not repeats else []
    report = SoakReport(count=count, fresh=fresh, distinct=len(primed) or len(repeats), over_s=over_s)
    tap = _ResultTap(topo, f"soak-results-{run}")
    duplicator = _Duplicator(topo, run) if duplicate else None
    hard_deadline = time.monotonic() + timeout_s
    try:
        # Priming: each distinct photo once, in sequence, so its result is in the cache before the clock.
        started = time.monotonic()
        for index, data in enumerate(primed):
            job = topo.upload_job(data, user_id, f"prime-{run}-{index}", "photo.jpg")
            with tap.cond:
                if not tap.cond.wait_for(lambda j=job.job_id: j in tap.arrivals, max(1.0, hard_deadline - time.monotonic())):
                    raise TimeoutError(f"priming photo {index} got no result")
        report.prime_seconds = time.monotonic() - started
        if primed:
            log(f"primed {len(primed)} photos in {report.prime_seconds:.1f} s")

        # Which uploads carry fresh bytes: spread evenly over the run.
        fresh_at = sorted({round(i * count / fresh) for i in range(fresh)}) if fresh else []
        many_at = set(fresh_at[:: max(1, len(fresh_at) // many)][:many]) if many else set()
        eight = tiled(photos)
        repeats = repeats or primed
        uploads = [(variant(eight, i, salt) if i in many_at else variant(photos[i % len(photos)], i, salt))
                   if i in fresh_at else repeats[i % len(repeats)] for i in range(count)]
        many_jobs: set[str] = set()
        sent_at: dict[str, float] = {}
        backlog = 0
        t0 = time.monotonic()
        for i, data in enumerate(uploads):
            due = t0 + (i * over_s / count if count > 1 else 0.0)
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            if time.monotonic() > hard_deadline:
                break
            began = time.monotonic()
            job = topo.upload_job(data, user_id, f"soak-{run}-{i}", "photo.jpg")
            sent_at[job.job_id] = began
            if i in many_at:
                many_jobs.add(job.job_id)
            backlog = max(backlog, len(sent_at) - tap.answered(sent_at))
            if (i + 1) % max(1, count // 10) == 0:
                log(f"sent {i + 1}/{count}, answered {tap.answered(sent_at)}")
        report.sent = len(sent_at)
        report.send_seconds = time.monotonic() - t0

        # Drain until every job has its result or the deadline. (The backlog only shrinks from here:
        # its deepest point is right after some upload, where it was sampled.)
        with tap.cond:
            tap.cond.wait_for(lambda: all(j in tap.arrivals for j in sent_at),
                              max(0.0, hard_deadline - time.monotonic()))
        time.sleep(grace_s)  # late duplicates would show by now

        with tap.cond:
            arrivals = {j: list(tap.arrivals.get(j, [])) for j in sent_at}
        latencies, last = [], t0
        for job_id, got in arrivals.items():
            if not got:
                report.lost += 1
                continue
            report.received += 1
            first_at, body = got[0]
            latencies.append(first_at - sent_at[job_id])
            last = max(last, first_at)
            if len(got) > 1:
                report.duplicated += 1
                report.extra_results += len(got) - 1
            if body.get("cacheHit"):
                report.cache_hits += 1
            if job_id in many_jobs:
                report.many_garments += 1
                report.items_per_many.append(len(body.get("allSegmentedItems") or []))
            if _overwritten(topo, body):
                report.overwritten += 1
            if not body.get("success"):
                report.failed += 1
                code = str(body.get("errorCode"))
                report.error_codes[code] = report.error_codes.get(code, 0) + 1
        report.deepest_backlog = backlog
        report.duplicated_messages = duplicator.count if duplicator else 0
        report.elapsed_seconds = last - t0
        report.throughput_per_s = report.received / report.elapsed_seconds if report.elapsed_seconds > 0 else 0.0
        report.p50_s, report.p95_s = percentile(latencies, 50), percentile(latencies, 95)
        report.max_s = max(latencies, default=0.0)
        if webhook is not None:
            calls = webhook.calls_by_job()
            ours = {j: calls.get(j, []) for j in sent_at}
            report.webhook_jobs = sum(1 for c in ours.values() if c)
            report.webhook_duplicated = sum(1 for c in ours.values() if len(c) > 1)
            report.webhook_unverified = sum(1 for c in ours.values() for ok in c if not ok)
        return report
    finally:
        tap.close()
        if duplicator:
            duplicator.close()


def _overwritten(topo, published: dict) -> bool:
    """Whether the job's stored result.json says something else than its first published result
    (both name files; links are signed only when a result is handed out)."""
    from shared.documents import ResultDocument
    from shared.layout import results_prefix

    try:
        first = ResultDocument.model_validate(published)
        key = results_prefix(first.user_id, first.cloth_id, first.job_id) + "result.json"
        stored = ResultDocument.model_validate_json(topo.read_object("results", key))
    except Exception:
        return True  # unreadable or missing: not what was published
    return stored != first


class WebhookCounter:
    """A receiver on 127.0.0.1 that verifies each call's signature and counts calls per job."""

    def __init__(self, secret: str) -> None:
        from shared.runtime.webhook import HEADER, verify

        self.secret = secret
        self.calls: list[tuple[str, bool]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = verify(outer.secret, body, self.headers.get(HEADER, ""))
                try:
                    job_id = json.loads(body).get("jobId", "")
                except ValueError:
                    job_id = ""
                with outer.lock:
                    outer.calls.append((job_id, ok))
                self.send_response(204 if ok else 401)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.1,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/closet-webhook"

    def calls_by_job(self) -> dict[str, list[bool]]:
        out: dict[str, list[bool]] = {}
        with self.lock:
            for job_id, ok in self.calls:
                out.setdefault(job_id, []).append(ok)
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m closet_pipeline.dev.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help=f"uploads (1..{MAX_COUNT}; default 200)")
    parser.add_argument("--over", type=float, default=60.0, help="seconds to spread the uploads over (default 60)")
    parser.add_argument("--fresh", type=int, default=10,
                        help="uploads with never-seen bytes, i.e. full model runs (default 10; the rest repeat primed photos)")
    parser.add_argument("--distinct", type=int, default=10, help="distinct photos primed into the cache (default 10)")
    parser.add_argument("--many", type=int, default=2,
                        help="of the fresh uploads, how many are one photo of eight garments (default 2)")
    parser.add_argument("--no-duplicate", action="store_true",
                        help="do not publish every stage message a second time (done by default)")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up waiting for results after this (s)")
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    args = parser.parse_args(argv)
    if not 1 <= args.count <= MAX_COUNT:
        parser.error(f"--count must be 1..{MAX_COUNT}")

    from closet_pipeline.dev.topology import LocalTopology, TopologyError

    secret = "soak-" + uuid.uuid4().hex
    webhook = WebhookCounter(secret)
    env = {"CLOSET_WEBHOOK_URL": webhook.url, "CLOSET_WEBHOOK_SECRET": secret}
    topo = LocalTopology(env)
    try:
        print("starting the topology (emulators and functions on 127.0.0.1) ...", file=sys.stderr, flush=True)
        topo.start()
        for stage in topo.stages:
            topo.pubsub.publish(stage["topic"], b"{}", {"warmup": "true"})
        report = run_soak(topo, count=args.count, over_s=args.over, fresh=args.fresh, distinct=args.distinct,
                          timeout_s=args.timeout, webhook=webhook, many=args.many, duplicate=not args.no_duplicate)
    except TopologyError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    finally:
        topo.stop()
        topo.remove_workdir()
        webhook.close()
    command = "python -m closet_pipeline.dev.soak " + " ".join(
        f"--{k} {v:g}" if isinstance(v, float) else f"--{k} {v}"
        for k, v in (("count", args.count), ("over", args.over), ("fresh", args.fresh), ("distinct", args.distinct),
                     ("many", args.many))) + (" --no-duplicate" if args.no_duplicate else "")
    print(f"\n{command}\n{report.table()}")
    if args.json:
        args.json.write_text(json.dumps({**asdict(report), "cacheHitShare": report.cache_hit_share,
                                         "command": command}, indent=2))
    return 0 if report.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
