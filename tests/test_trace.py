"""The `hop` log line each delivery leaves (shared/runtime/trace.py), and the per-hop table the
benchmark builds from them (closet_pipeline/bench/hops.py)."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import pytest
from PIL import Image

from closet_pipeline.adapters.memory import MemoryBlobStore
from closet_pipeline.bench.hops import job_path, read_hops
from closet_pipeline.local_run import MemoryWorkImages, all_stages
from shared.adapters.bus import Bus
from shared.config import Settings
from shared.layout import work_key
from shared.messages import GarmentDone, Job
from shared.runtime import trace
from shared.runtime.dispatch import Dispatcher
from shared.runtime.logs import CloudLoggingFormatter
from shared.stages.context import StageContext
from shared.topology import load as load_topology


class _Bus(Bus):
    def __init__(self) -> None:
        self.published: list[str] = []

    def publish(self, topic, data, attributes=None) -> None:
        self.published.append(topic)


def _deliver_message(images: MemoryWorkImages, job_id: str) -> GarmentDone:
    job = Job(job_id=job_id, cloth_id="c", user_id="u", upload="uploads/u/c/a.jpg")
    cutout = Image.new("RGBA", (64, 64), (200, 10, 10, 255))
    images.put(work_key(job_id, "cutout.png"), cutout)
    images.put(work_key(job_id, "crop-0.png"), cutout)
    return GarmentDone(job=job, cache_key="0" * 32, cutout=work_key(job_id, "cutout.png"), item_index=0,
                       item_count=1, crop=work_key(job_id, "crop-0.png"), label="garment", area_pixels=4096,
                       bbox=(0, 0, 64, 64), touches_border=True, expand_note="not needed")


@pytest.fixture
def hop_lines(caplog):
    """The hop log lines as Cloud Logging receives them (JSON)."""
    caplog.set_level(logging.INFO, logger="closet.trace")
    formatter = CloudLoggingFormatter()
    return lambda: [json.loads(formatter.format(r)) for r in caplog.records if r.name == "closet.trace"]


def test_a_delivery_logs_one_hop_with_its_storage_and_publish_calls(hop_lines):
    store, images, bus = MemoryBlobStore(), MemoryWorkImages(), _Bus()
    counted = {"n": 0}

    class Counting:  # how many storage calls the stage and the dispatcher really make
        def __getattr__(self, name):
            attribute = getattr(store, name)
            if not callable(attribute):
                return attribute

            def call(*args, **kwargs):
                counted["n"] += 1
                return attribute(*args, **kwargs)
            return call

    timed_store = trace.timed(Counting(), "storage")
    settings = Settings(cache_enabled=False, expand_policy="never")
    dispatcher = Dispatcher(StageContext(settings, timed_store, images), trace.timed(bus, "publish"), all_stages(),
                            topology=load_topology())
    published_at = (datetime.now(timezone.utc) - timedelta(milliseconds=250)).isoformat()
    with trace.hop("deliver", published_at=published_at, event_time="2026-11-30T04:22:18Z"):
        dispatcher.handle("deliver", _deliver_message(images, "tracejob").to_json())

    [line] = hop_lines()
    hop = line["hop"]
    assert line["jobId"] == "tracejob" and hop["function"] == "deliver" and line["stage"] == "deliver"
    assert hop["storageCalls"] == counted["n"] > 0  # the deliver stage's three outputs, records, markers
    assert 0 < hop["stageStorageCalls"] < hop["storageCalls"]  # the outcome records are outside the stage
    assert hop["publishCalls"] == len(bus.published) >= 2  # the result and progress
    assert 0 < hop["decodedMs"] < hop["forwardedMs"] <= hop["totalMs"] and hop["stageMs"] <= hop["totalMs"]
    assert 250 <= hop["waitedMs"] < 5000
    assert "notifiedMs" not in hop  # an eventTime in whole seconds (fake-gcs-server's) says nothing


def test_a_failing_delivery_still_logs_its_hop(hop_lines):
    with pytest.raises(RuntimeError):
        with trace.hop("segment", published_at="not a time"):
            trace.note(jobId="j1", stage="segment")
            raise RuntimeError("boom")
    [line] = hop_lines()
    assert line["hop"]["raised"] == "RuntimeError" and line["jobId"] == "j1"
    assert "waitedMs" not in line["hop"]  # an unreadable publishTime is left out, not guessed


def test_calls_outside_a_hop_are_not_counted_and_pass_through():
    store = MemoryBlobStore()
    timed = trace.timed(store, "storage")
    timed.write("work/j/a.json", b"{}", content_type="application/json")
    assert timed.read("work/j/a.json").data == b"{}"  # the local run and the tests call adapters without a hop


def test_the_path_of_one_job_from_hop_lines():
    """Three functions' lines (a second ingest line is a duplicate delivery of another job) become the
    rows of one job's path: notification, each function, the result's way out."""
    start = datetime(2026, 11, 30, 4, 0, 0, tzinfo=timezone.utc)

    def line(function, job, received_s, waited, forwarded, total):
        received = (start + timedelta(seconds=received_s)).isoformat()
        return json.dumps({"severity": "INFO", "message": "hop", "hop": {
            "function": function, "jobId": job, "receivedAt": received, "waitedMs": waited, "forwardedMs": forwarded,
            "totalMs": total, "stageMs": forwarded - 10, "storageCalls": 4, "storageMs": 8.0, "publishCalls": 2,
            "publishMs": 3.0}})

    logs = {"ingest": "\n".join([line("ingest", "j", 0.300, 50, 200, 260), line("ingest", "other", 0.9, 5, 5, 5)]),
            "remove_background": "not json\n" + line("remove_background", "j", 0.530, 30, 2000, 2040),
            "deliver": line("deliver", "j", 2.560, 30, 300, 400)}
    rows = job_path(read_hops(logs), "j", ["ingest", "remove_background", "segment", "deliver"], start,
                    start + timedelta(seconds=2.9))
    assert [r.hop for r in rows] == ["notification: upload stored to its message published", "ingest",
                                     "remove_background", "deliver", "result: published to seen by the app"]
    assert rows[0].forward_ms == pytest.approx(250)  # received at 300 ms, after waiting 50 ms
    assert rows[1].after_ms == pytest.approx(60) and rows[1].storage == (4, 8.0)
    assert rows[-1].forward_ms == pytest.approx(2900 - 2860)  # deliver forwarded at 2.56 s + 300 ms
    assert sum(r.path_ms for r in rows) == pytest.approx(2900)  # the path accounts for the whole time
