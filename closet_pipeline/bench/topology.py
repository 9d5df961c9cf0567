"""Through the local emulator topology (closet_pipeline/dev/topology.py): the Pub/Sub emulator,
fake-gcs-server and one functions-framework server per function, expand off, cache on.

- end to end: from the upload's completion (the bucket's OBJECT_FINALIZE) to the result event on
  `cloth-results`; the upload's own PUT is timed apart (on a phone it is the network's share). Each
  upload gets unique bytes (`unique_variant`), so the cache cannot serve it;
- cold: the first photo after the functions started, with no warm-up message (the model loads in
  remove_background's process on that photo); and the first photo after the functions were started
  again and sent the warm-up message Cloud Scheduler sends;
- a cache hit: the same bytes uploaded again under another cloth id;
- hops: where one photo's time goes, from the functions' `hop` log lines (closet_pipeline/bench/hops.py),
  median over the warm photos of the main size and over the cache hits;
- throughput: N distinct fresh uploads at once, time from the first upload's start to the last result,
  and where the cores went meanwhile (CPU seconds per process, the machine's busy time);
- memory: VmHWM of each function's worker (the largest in its process group), after the single jobs
  and again after the burst.
"""

from __future__ import annotations

import itertools
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Callable

from closet_pipeline.bench.hops import job_path, median_rows, read_hops
from closet_pipeline.bench.photos import PhonePhoto, unique_variant
from closet_pipeline.bench.system import group_cpu_s, group_peak_rss_mb, machine_busy_s
from shared.runtime.events import WARMUP_ATTRIBUTE

JOB_TIMEOUT_S = 300.0  # two busy cores, several photos in flight


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _memory(topo) -> dict[str, dict]:
    configured = {spec.name: spec.memory for spec in topo.specs}  # as declared (shared/topology.json)
    return {name: {"peak_mb": group_peak_rss_mb(pid), "configured": configured.get(name)}
            for name, pid in topo.servers.pids().items()}


def _cpu(topo) -> dict[str, float]:
    """CPU seconds so far: each topology process (functions, emulators, fronts), this benchmark's
    own process (uploads, the result subscriber) and the whole machine (`machine`)."""
    used = {proc.name.removeprefix("function-"): group_cpu_s(proc.popen.pid) for proc in topo.procs if proc.alive()}
    times = os.times()
    used["benchmark (uploads, subscriber)"] = times.user + times.system
    used["machine"] = machine_busy_s()
    return used


def _cold_after_warm_up(topo, run_job: Callable[[], dict]) -> dict:
    """Every stage's function started again (a new instance), the warm-up message published to its
    topic as Cloud Scheduler does, and once each has handled it, a fresh photo."""
    stages = [stage["name"] for stage in topo.stages]
    warmed_before = {name: _warm_ups(topo, name) for name in stages}
    for name in stages:
        topo.servers.kill(name)
    for name in stages:
        topo.servers.restart(name)
    begin = time.perf_counter()
    for stage in topo.stages:
        topo.pubsub.publish(stage["topic"], b"{}", {WARMUP_ATTRIBUTE: "true"})
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while any(_warm_ups(topo, name) <= warmed_before[name] for name in stages):
        if time.monotonic() > deadline:
            raise TimeoutError("the warm-up messages were not all handled")
        time.sleep(0.05)
    return {"warm_up_ms": _ms(begin), **run_job()}


def _warm_ups(topo, name: str) -> int:
    """Warm-up messages the function has handled (its hop lines)."""
    return sum(1 for h in read_hops({name: topo.servers.log(name)}) if h.get("warmUp") and "raised" not in h)


def _finish_times(topo, job_ids: set[str], begin: float, timeout_s: float) -> dict[str, float]:
    """When each job's result event arrived, in ms since `begin` (polled every 20 ms)."""
    finished: dict[str, float] = {}
    deadline = time.monotonic() + timeout_s
    while len(finished) < len(job_ids):
        if time.monotonic() > deadline:
            missing = len(job_ids) - len(finished)
            raise TimeoutError(f"{missing} of {len(job_ids)} burst jobs had no result in {timeout_s:.0f} s")
        now = _ms(begin)
        for document in topo.results:
            if document.job_id in job_ids and document.job_id not in finished:
                finished[document.job_id] = now
        time.sleep(0.02)
    return finished


def measure_topology(photos_by_size: dict[int, list[PhonePhoto]], *, runs: int, cache_hits: int, throughput: int,
                     log: Callable[[str], None] = print) -> dict:
    """Everything measured through one topology; the first size in `photos_by_size` is the main one."""
    from closet_pipeline.dev.topology import LocalTopology

    topo = LocalTopology({"CLOSET_EXPAND_POLICY": "never", "CLOSET_BACKGROUND_PROVIDERS": "local"})
    cloth = itertools.count()
    started = time.perf_counter()
    result: dict = {"sizes": {}}

    def job(data: bytes, name: str) -> dict:
        begin = time.perf_counter()
        uploaded = topo.upload_job(data, "bench", f"bench{next(cloth)}", name)
        put_ms = _ms(begin)
        begin, uploaded_at = time.perf_counter(), datetime.now(timezone.utc)
        document = topo.wait_for_result(uploaded.job_id, JOB_TIMEOUT_S)
        e2e_ms, result_at = _ms(begin), datetime.now(timezone.utc)
        if not document.success:
            raise RuntimeError(f"{name} failed through the topology: {document.error_code} {document.error_message}")
        return {"photo": name, "e2e_ms": e2e_ms, "put_ms": put_ms, "timings": dict(document.timings),
                "cache_hit": document.cache_hit, "job_id": uploaded.job_id, "uploaded_at": uploaded_at,
                "result_at": result_at}

    def hops(jobs: list[dict]) -> list[dict]:
        logged = read_hops({name: topo.servers.log(name) for name in topo.functions})
        order = [stage["name"] for stage in topo.stages]
        paths = [job_path(logged, j["job_id"], order, j["uploaded_at"], j["result_at"]) for j in jobs]
        return [asdict(row) for row in median_rows(paths)]

    try:
        log("topology: starting the emulators and functions ...")
        topo.start()
        result["start_ms"] = _ms(started)
        main = next(iter(photos_by_size))
        for size, photos in photos_by_size.items():
            data = {photo: photo.path.read_bytes() for photo in photos}
            entry: dict = {}
            if size == main:
                log(f"topology: cold photo ({photos[0].name}, no warm-up)")
                entry["cold"] = job(unique_variant(data[photos[0]], "cold"), photos[0].name)
            log(f"topology: {runs} warm run(s) of {len(photos)} photo(s) at {size} MP")
            entry["warm"] = [job(unique_variant(data[photo], f"{size}-{r}-{i}"), photo.name)
                             for r in range(runs) for i, photo in enumerate(photos)]
            result["sizes"][size] = entry
        result["memory_single"] = _memory(topo)
        time.sleep(0.5)  # the last function finishes its hop (its log line) after forwarding
        result["hops"] = hops(result["sizes"][main]["warm"])

        photos = photos_by_size[main]
        if cache_hits:
            log(f"topology: {cache_hits} cache hit(s)")
            repeated = unique_variant(photos[0].path.read_bytes(), "cache")
            job(repeated, photos[0].name)  # processed, then kept in the cache
            hits = [job(repeated, photos[0].name) for _ in range(cache_hits)]
            if not all(h["cache_hit"] for h in hits):
                raise RuntimeError("a repeat upload was not served from the cache through the topology")
            result["cache_hit"] = hits
            time.sleep(0.5)
            result["hops_cache_hit"] = hops(hits)

        log("topology: the functions started again, sent the warm-up message, then a fresh photo")
        result["cold_warmed"] = _cold_after_warm_up(topo, lambda: job(
            unique_variant(photos[0].path.read_bytes(), "cold-warmed"), photos[0].name))

        if throughput:
            log(f"topology: throughput, {throughput} uploads at once")
            chosen = [photos[i % len(photos)] for i in range(throughput)]
            uploads = [(f"burst{i}", photo.name, unique_variant(photo.path.read_bytes(), f"burst{i}"))
                       for i, photo in enumerate(chosen)]
            cpu_before = _cpu(topo)
            begin = time.perf_counter()
            with ThreadPoolExecutor(4) as pool:
                jobs = list(pool.map(lambda u: topo.upload_job(u[2], "bench", u[0], u[1]), uploads))
            uploaded_ms = _ms(begin)
            finished = _finish_times(topo, {uploaded.job_id for uploaded in jobs}, begin, JOB_TIMEOUT_S * 2)
            elapsed = max(finished.values())
            cpu_after = _cpu(topo)
            failed = sum(not document.success for document in topo.results if document.job_id in finished)
            result["throughput"] = {"photos": throughput, "elapsed_ms": elapsed, "uploads_ms": uploaded_ms,
                                    "failed": failed, "per_minute": throughput / (elapsed / 60000),
                                    "finished_ms": sorted(finished.values()),
                                    "cpu_s": {name: round(cpu_after[name] - cpu_before.get(name, 0.0), 2)
                                              for name in cpu_after},
                                    "cores": os.cpu_count()}
            result["memory_burst"] = _memory(topo)
    finally:
        topo.stop()
        topo.remove_workdir()
    return result
