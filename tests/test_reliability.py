"""Faults the pipeline survives, measured (see RELIABILITY.md for the figures).

In-process (LocalPipeline, the same stage and dispatcher code as the functions): storage answering
503 for a while (tests/fakes/flaky_store.py), the background provider timing out or answering
5xx/429 (the next provider serves; none left: retried, dead-lettered, RETRIES_EXHAUSTED), and a
concurrent duplicate of the message that finishes a job.

On the strict emulator topology (one per module, a webhook receiver that can refuse connections or
answer 500): a stage's process SIGKILLed mid-photo and started again by the topology, the same
message delivered twice at once, the same bytes uploaded twice at once, the webhook receiver
failing for a while (retried by Pub/Sub), a small soak (closet_pipeline/dev/soak.py), and no secret in any log.

Bad input is tests/test_bad_input.py; the poison message (INTERNAL_ERROR on its 3rd delivery,
reported once) is tests/test_topology.py::test_poison_message_ends_internal_error_on_its_third_delivery.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import pytest

from closet_pipeline.adapters.memory import MemoryBlobStore
from closet_pipeline.dev.soak import base_photos, run_soak, variant
from closet_pipeline.local_run import LocalPipeline, MemoryWorkImages, all_stages
from shared.adapters.bus.base import Bus
from shared.config import Settings
from shared.documents import ResultDocument
from shared.errors import TransientError
from shared.layout import results_prefix, work_key
from shared.messages import GarmentDone, Job
from shared.runtime.dispatch import Dispatcher
from shared.runtime.webhook import HEADER, verify
from shared.stages.context import StageContext
from shared.topology import load as load_topology
from tests.conftest import configure
from tests.fakes.flaky_store import FlakyStore
from tests.fakes.removebg import TIMEOUT, FakeRemoveBg
from tests.polling import wait_until
from tests.topology_helpers import TopologyUnderTest

TSHIRT = "0702f1cb-0096-491e-9267-ee4f3c331fe6.jpg"
PANTS = "ba9cd233-fff5-44f2-8569-b6ba0667d6a9.jpg"
RB_KEY = "rb-reliability-key"

# Known values for the topology: the last test reads every log for them.
SECRETS = {
    "CLOSET_WEBHOOK_SECRET": "whsec-rel-8c1f0a9e77d2",
    "CLOSET_UPLOAD_URL_SECRET": "upsec-rel-41b7c2e9d035",
    "CLOSET_REMOVEBG_API_KEY": "rbkey-rel-9e3d5f1a2c68",
    "CLOSET_GEMINI_API_KEY": "gmkey-rel-0d6b8e4f13a7",
}
JOB_TIMEOUT = 150  # seconds; two busy CPUs, IS-Net for several photos at once




needs_emulators = pytest.mark.usefixtures("emulator_tools")



def results_on_bus(pipeline: LocalPipeline, job_id: str) -> list[ResultDocument]:
    return [ResultDocument.model_validate_json(data) for topic, data, attrs in pipeline.bus.published
            if topic == pipeline.topology.results_topic and attrs.get("jobId") == job_id]


def dead_letters_on_bus(pipeline: LocalPipeline) -> list[bytes]:
    return [data for topic, data, _ in pipeline.bus.published if topic == pipeline.topology.dead_letter_topic]


def expected_result_files(document: ResultDocument, fmt: str = "png") -> set[str]:
    files = {f"cutout.{fmt}", "result.json"}
    for index, _ in enumerate(document.all_segmented_items):
        files |= {f"items/{index}.{fmt}", f"items/{index}.thumb.webp"}
    return files


# == in-process: storage 503s ===================================================================
@pytest.fixture
def removebg():
    with FakeRemoveBg(api_key=RB_KEY) as fake:
        yield fake


def fast_settings(settings: Settings, removebg: FakeRemoveBg, **changes) -> Settings:
    """remove.bg (a local fake) instead of IS-Net: these tests are about storage, not the model."""
    return configure(settings, **{"background_providers": ("removebg",), "removebg_api_key": RB_KEY,
                                  "removebg_url": removebg.url, "expand_policy": "never", **changes})


STORAGE_FAULTS = {
    # name: (operation, times, key predicate)
    "any call, 4 in a row": [("*", 4, None)],
    "2 reads, 2 writes, 2 creates, 2 copies": [("read", 2, None), ("write", 2, None), ("create", 2, None),
                                               ("copy", 2, None)],
    "the garment join, 3 times": [("*", 3, lambda key: "/garments/" in key)],
    "the results folder, 4 times": [("write", 4, lambda key: key.startswith("results/"))],
    "the final-result claim, 2 times": [("create", 2, lambda key: key.endswith("/final.json"))],
    "the outcome record, 2 times": [("create", 2, lambda key: "/outcomes/" in key and "lease" not in key)],
    "the in-progress lease, 2 times": [("create", 2, lambda key: key.endswith(".lease.json"))],
}


@pytest.mark.parametrize("faults", list(STORAGE_FAULTS), ids=list(STORAGE_FAULTS))
def test_storage_503s_are_retried_without_loss(settings, photo_bytes, removebg, faults):
    """GCS answering 503 for a while: the transport redelivers (5 attempts, as the topology is
    configured) and the job ends with one complete result, nothing lost, nothing doubled."""
    store = FlakyStore(MemoryBlobStore())
    pipeline = LocalPipeline(fast_settings(settings, removebg), store, keep_work=True)
    pipeline.bus.max_attempts = 5  # a short policy: these tests are about storage
    for operation, times, where in STORAGE_FAULTS[faults]:
        # The upload itself is written by the test harness (the app's PUT), not by the pipeline.
        store.fail(operation, times, where=lambda key, w=where: not key.startswith("uploads/") and (w is None or w(key)))
    try:
        document = pipeline.process_bytes(photo_bytes(TSHIRT), "a.jpg", user_id="u503", cloth_id="c503")
    finally:
        pipeline.close()
    assert store.injected and store.pending == 0, "every scripted 503 was hit"
    assert document.success, (document.error_code, document.error_message, store.injected)
    assert len(results_on_bus(pipeline, document.job_id)) == 1
    assert dead_letters_on_bus(pipeline) == []
    prefix = results_prefix("u503", "c503", document.job_id)
    assert {k.removeprefix(prefix) for k in store.inner.list(prefix)} == expected_result_files(document)
    garments = store.inner.list(work_key(document.job_id, "garments/"))
    assert len(garments) == len(document.all_segmented_items)
    assert store.inner.exists(work_key(document.job_id, "published.json"))


def test_storage_503_after_the_result_is_out_does_not_publish_it_twice(settings, photo_bytes, removebg):
    store = FlakyStore(MemoryBlobStore())
    store.fail("create", 1, where=lambda key: key.endswith("/published.json"))  # mark_published's write
    pipeline = LocalPipeline(fast_settings(settings, removebg), store, keep_work=True)
    pipeline.bus.max_attempts = 5
    try:
        document = pipeline.process_bytes(photo_bytes(TSHIRT), "a.jpg", user_id="u503", cloth_id="mark")
    finally:
        pipeline.close()
    assert store.injected == [("create", work_key(document.job_id, "published.json"))]
    assert document.success
    assert len(results_on_bus(pipeline, document.job_id)) == 1


# == in-process: the background provider chain =================================================
def test_a_failing_provider_hands_the_photo_to_the_next(settings, photo_bytes):
    """remove.bg times out (0.5 s limit here) or rate-limits: `local` (IS-Net) serves, and the
    result says so. (A 503 is tests/test_pipeline.py::test_background_chain_falls_back_and_records_who_served.)"""
    with FakeRemoveBg(api_key=RB_KEY, hang_s=3.0) as removebg:
        configured = configure(settings, **{"background_providers": ("removebg", "local"),
                                            "removebg_api_key": RB_KEY, "removebg_url": removebg.url,
                                            "provider_timeout_s": 0.5, "expand_policy": "never",
                                            "cache_enabled": False})
        pipeline = LocalPipeline(configured, MemoryBlobStore())
        try:
            for failure in (TIMEOUT, 429):
                removebg.fail_next(failure)
                started = time.monotonic()
                document = pipeline.process_bytes(photo_bytes(PANTS), "p.jpg", cloth_id=f"chain{failure}")
                assert document.success, (failure, document.error_message)
                assert document.providers["remove_background"] == "local", failure
                assert len(results_on_bus(pipeline, document.job_id)) == 1
                print(f"remove.bg {failure}: served by local in {time.monotonic() - started:.1f} s")
        finally:
            pipeline.close()
        assert len(removebg.requests) == 2  # each photo tried it once, then the next provider
        assert dead_letters_on_bus(pipeline) == []


def test_no_provider_left_retries_then_fails_and_reports_once(settings, photo_bytes, removebg):
    """Only remove.bg, failing every time: each delivery tries it, then the dead-letter handler ends
    the job RETRIES_EXHAUSTED, published once and handed to the notifier once."""
    removebg.fail_next(*([503] * 20))
    notified: list[ResultDocument] = []
    pipeline = LocalPipeline(fast_settings(settings, removebg), MemoryBlobStore(),  # the webhook's place
                             webhook=lambda body: notified.append(ResultDocument.model_validate_json(body)))
    pipeline.bus.max_attempts = 5
    try:
        document = pipeline.process_bytes(photo_bytes(PANTS), "p.jpg", cloth_id="nobody")
    finally:
        pipeline.close()
    assert document.success is False and document.error_code == "RETRIES_EXHAUSTED"
    assert "remove" in document.error_message
    assert len(removebg.requests) == 5  # one per delivery
    assert len(dead_letters_on_bus(pipeline)) == 1
    assert len(results_on_bus(pipeline, document.job_id)) == 1
    assert [d.job_id for d in notified] == [document.job_id]


# == in-process: a duplicate of the finishing message, concurrently =============================
class _GateBus(Bus):
    """Records publishes; the first publish to the results topic waits until `release` is set, so
    a second delivery can run while the first is between 'published' and 'marked published'."""

    def __init__(self, results_topic: str) -> None:
        self.results_topic = results_topic
        self.published: list[tuple[str, bytes]] = []
        self.in_publish = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    def publish(self, topic, data, attributes=None) -> None:
        with self._lock:
            self.published.append((topic, data))
            first = topic == self.results_topic and not self.in_publish.is_set()
            if first:
                self.in_publish.set()
        if first:
            self.release.wait(10)


def test_concurrent_duplicate_of_the_last_garment_gives_one_result(settings):
    from PIL import Image

    topology = load_topology()
    store, images = MemoryBlobStore(), MemoryWorkImages()
    ctx = StageContext(configure(settings, **{"cache_enabled": False}), store, images)
    bus = _GateBus(topology.results_topic)
    dispatcher = Dispatcher(ctx, bus, all_stages(), topology=topology)
    job = Job(job_id="dupjob", cloth_id="c", user_id="u", upload="uploads/u/c/a.jpg")
    cutout = Image.new("RGBA", (64, 64), (200, 10, 10, 255))
    images.put(work_key("dupjob", "cutout.png"), cutout)
    images.put(work_key("dupjob", "crop-0.png"), cutout)
    message = GarmentDone(job=job, cache_key="0" * 32, cutout=work_key("dupjob", "cutout.png"), item_index=0,
                          item_count=1, crop=work_key("dupjob", "crop-0.png"), label="garment", area_pixels=4096,
                          bbox=(0, 0, 64, 64), touches_border=True, expand_note="not needed")
    first = threading.Thread(target=dispatcher.run, args=("deliver", message))
    first.start()
    redeliver = False
    try:
        assert bus.in_publish.wait(10)
        try:
            dispatcher.run("deliver", message)  # Pub/Sub's duplicate, while the first is publishing
        except TransientError:
            redeliver = True  # a fix may refuse it for now; Pub/Sub then delivers it again later
    finally:
        bus.release.set()
        first.join(10)
    if redeliver:
        dispatcher.run("deliver", message)
    assert len([1 for topic, _ in bus.published if topic == topology.results_topic]) == 1


# == the emulator topology ========================================================================
class Receiver:
    """The app's webhook endpoint on 127.0.0.1: verifies signatures, records every call, and can be
    taken down (connections refused) or told to answer 500 for the next calls."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.calls: list[dict] = []
        self.errors_left: dict[str, int] = {}  # clothId -> 500s still to answer
        self.lock = threading.Lock()
        self.server = None
        self.port = 0
        self.up()

    def _handler(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = verify(outer.secret, body, self.headers.get(HEADER, ""))
                document = json.loads(body)
                with outer.lock:
                    cloth = document.get("clothId")
                    status = 500 if outer.errors_left.get(cloth, 0) > 0 else (204 if ok else 401)
                    if status == 500:
                        outer.errors_left[cloth] -= 1
                    outer.calls.append({"jobId": document.get("jobId"), "verified": ok, "status": status,
                                        "at": time.monotonic(), "body": document})
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        return Handler

    def up(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())  # same port when back
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def down(self) -> None:
        """Close the listening socket: every connection is refused until up()."""
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, count: int, cloth_id: str) -> None:
        """Answer 500 to the next `count` deliveries of that garment's result (other jobs' deliveries,
        retried on their own backoff, are not counted)."""
        with self.lock:
            self.errors_left[cloth_id] = count

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/closet-webhook"

    def for_job(self, job_id: str, delivered: bool = True) -> list[dict]:
        with self.lock:
            return [c for c in self.calls if c["jobId"] == job_id and (not delivered or c["status"] < 300)]

    def calls_by_job(self) -> dict[str, list[bool]]:  # what closet_pipeline.dev.soak reads
        out: dict[str, list[bool]] = {}
        with self.lock:
            for call in self.calls:
                if call["status"] < 300:
                    out.setdefault(call["jobId"], []).append(call["verified"])
        return out

    def close(self) -> None:
        self.down()


class SlowRemoveBg(FakeRemoveBg):
    """The remove.bg fake, able to hold its next answers: while it holds, the photo is inside
    remove_background (the function is waiting on its provider), which a test can see and act on."""

    def __init__(self, api_key: str) -> None:
        super().__init__(api_key=api_key)
        self.holds: deque[float] = deque()
        self.arrivals: list[float] = []

    def hold_next(self, *seconds: float) -> None:
        self.holds.extend(seconds)

    def _handle(self, request):
        self.arrivals.append(time.monotonic())
        reply = super()._handle(request)
        if reply.status == 200 and self.holds:
            reply.delay_s = self.holds.popleft()
        return reply


@pytest.fixture(scope="module")
def receiver():
    r = Receiver(SECRETS["CLOSET_WEBHOOK_SECRET"])
    yield r
    r.close()


@pytest.fixture(scope="module")
def provider():
    with SlowRemoveBg(api_key=SECRETS["CLOSET_REMOVEBG_API_KEY"]) as fake:
        yield fake


@pytest.fixture(scope="module")
def topo(receiver, provider):
    """The topology with remove.bg (a local fake that can hold a photo) first in the chain and
    IS-Net behind it: deterministic and fast fault tests; `python -m closet_pipeline.dev.soak` and
    tests/test_topology.py run the model itself. Timeouts, leases, retry policies and memory are the
    declared ones (shared/topology.json), as deployed: remove_background's 120 s, the stages' 10-60 s
    backoff over 10 deliveries, the webhook's 10-600 s."""
    # THREADS: each function process stands for several instances, as Cloud Functions scales out,
    # so a duplicated message can run beside its original.
    env = {"THREADS": "4", "CLOSET_WEBHOOK_URL": receiver.url, "CLOSET_EXPAND_POLICY": "never",
           "CLOSET_BACKGROUND_PROVIDERS": "removebg,local", "CLOSET_REMOVEBG_URL": provider.url, **SECRETS}
    topology = TopologyUnderTest(env)
    try:
        topology.start()
        topology.rb_tap = topology.add_pull_subscription(topology.topic_of("remove_background"), "rel-tap-rb")
        topology.segment_tap = topology.add_pull_subscription(topology.topic_of("segment"), "rel-tap-segment")
        topology.photos = base_photos(10)
        topology.salt = os.urandom(4).hex().encode()  # bytes no earlier run (or cache) has seen
        yield topology
    finally:
        topology.stop()
        topology.remove_workdir()


@pytest.fixture
def logs_on_failure(request, topo):
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed > failed_before:
        print(topo.log_tails(40))


def fresh_photo(topo, index: int) -> bytes:
    return variant(topo.photos[index % len(topo.photos)], 1000 + index, topo.salt)


def log_lines(topo: TopologyUnderTest, function: str, job_id: str | None = None, message: str | None = None) -> list[dict]:
    lines = []
    for raw in topo.function_log(function).splitlines():
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if (job_id is None or entry.get("jobId") == job_id) and (message is None or message in entry.get("message", "")):
            lines.append(entry)
    return lines


def result_objects(topo: TopologyUnderTest, document: ResultDocument) -> set[str]:
    prefix = results_prefix(document.user_id, document.cloth_id, document.job_id)
    return {key.removeprefix(prefix) for key in topo.list_objects("results", prefix)}


def job_state(topo: TopologyUnderTest, job_id: str) -> tuple[list[int], dict]:
    """The garments joined (their marker indices) and the job's final claim."""
    client = topo.storage_client()
    prefix = work_key(job_id, "garments/")
    garments = sorted(int(b.name.rsplit("/", 1)[1].split(".")[0])
                      for b in client.list_blobs(topo.buckets["work"], prefix=prefix))
    final = json.loads(topo.read_object("work", work_key(job_id, "final.json")))
    return garments, final


def assert_one_clean_result(topo: TopologyUnderTest, receiver: Receiver, job_id: str, document: ResultDocument) -> None:
    """One result on the topic, one verified webhook call, exactly the expected files in the job's
    own results folder, each garment joined once, the job's end claimed and published."""
    assert len(topo.results_for(job_id)) == 1, [d.job_id for d in topo.results_for(job_id)]
    calls = receiver.for_job(job_id)
    assert len(calls) == 1 and calls[0]["verified"], calls
    assert result_objects(topo, document) == expected_result_files(document)
    assert all("://" not in name for name in document.urls())  # the topic names files, never links
    delivered = ResultDocument.model_validate(calls[0]["body"])  # links signed for the webhook's delivery
    assert len(delivered.urls()) == len(document.urls())
    for url in delivered.urls():
        assert results_prefix(document.user_id, document.cloth_id, job_id) in unquote(url), url  # its own folder only
    garments, final = job_state(topo, job_id)
    assert garments == list(range(len(document.all_segmented_items)))
    assert final["claimer"].startswith(("deliver:", "ingest:"))
    assert topo.read_object("work", work_key(job_id, "published.json"))
    assert not [d for d in topo.dead_letters if job_id.encode() in d]


@needs_emulators
@pytest.mark.usefixtures("logs_on_failure")
def test_stage_killed_mid_photo_under_the_default_timeouts(topo, receiver, provider):
    """SIGKILL remove_background's process group while a photo is inside it (its provider call in
    flight), under the declared timeouts: the topology starts it again on the same port (as Cloud
    Run starts a new instance). The dead delivery's in-progress lease lasts the function's 120 s;
    Pub/Sub's redeliveries (10, 20, 40, 60 s apart) are refused until it runs out, and still
    outlast it (10 deliveries: at least 370 s). The photo's outcome is checked by the last test of
    this module, test_the_killed_photo_finished_once, so the tests between run meanwhile."""
    before = len(provider.arrivals)
    provider.hold_next(60)
    job = topo.upload_job(fresh_photo(topo, 0), "rel", "killed", "photo.jpg")
    assert wait_until(lambda: len(provider.arrivals) > before, 60), "the photo never reached remove_background"
    assert not log_lines(topo, "remove_background", job.job_id, "stage done")
    topo.kill_function("remove_background")
    killed_at = time.monotonic()
    topo.restart_function("remove_background")  # waits: the supervisor starts it again
    assert ("remove_background", -9) in topo.restarts
    topo.kill_job = (job, killed_at, time.monotonic() - killed_at, before)


@needs_emulators
@pytest.mark.usefixtures("logs_on_failure")
def test_same_message_delivered_twice_at_once_gives_one_result(topo, receiver, provider):
    """The remove_background message published again while its first delivery is still inside the
    stage: the duplicate finds the first delivery's in-progress lease and is refused (IN_PROGRESS);
    redelivered after the outcome went out, it does nothing: the model runs once, no later stage sees
    a double; one result, one webhook call, no extra objects."""
    before = len(provider.arrivals)
    provider.hold_next(8)
    job = topo.upload_job(fresh_photo(topo, 1), "rel", "twice", "photo.jpg")
    original = None
    deadline = time.monotonic() + 60
    while original is None and time.monotonic() < deadline:
        for message in topo.pull(topo.rb_tap, timeout=5, max_messages=50):
            if message.attributes.get("jobId") == job.job_id:
                original = message
    assert original is not None, "the tap never saw the job's remove_background message"
    topo.publish(topo.topic_of("remove_background"), original.data, dict(original.attributes))
    document = topo.wait_for_result(job.job_id, JOB_TIMEOUT)
    assert document.success, (document.error_code, document.error_message)
    assert wait_until(lambda: log_lines(topo, "remove_background", job.job_id, "duplicate of a delivered message"), 60)
    assert len(log_lines(topo, "remove_background", job.job_id, "stage done")) == 1
    assert len(provider.arrivals) == before + 1  # the duplicate did not run the stage again
    items = len(document.all_segmented_items)
    assert wait_until(lambda: len(log_lines(topo, "deliver", job.job_id, "stage done")) >= items, 60)
    # the duplicate published nothing more: no later stage saw it
    assert len(log_lines(topo, "segment", job.job_id, "stage done")) == 1
    time.sleep(3)
    assert_one_clean_result(topo, receiver, job.job_id, document)
    topo.finished_job = (job, document)


@needs_emulators
@pytest.mark.usefixtures("logs_on_failure")
def test_same_bytes_uploaded_twice_at_once_gives_each_job_its_own_result(topo, receiver, provider):
    provider.hold_next(2, 2)  # both inside remove_background together
    data = fresh_photo(topo, 2)
    first = topo.upload_job(data, "rel", "sameA", "a.jpg")
    second = topo.upload_job(data, "rel2", "sameB", "b.jpg")
    documents = {job.job_id: topo.wait_for_result(job.job_id, JOB_TIMEOUT) for job in (first, second)}
    assert wait_until(lambda: all(receiver.for_job(j) for j in documents), 15)
    time.sleep(2)
    for job_id, document in documents.items():
        assert document.success, (document.error_code, document.error_message)
        assert_one_clean_result(topo, receiver, job_id, document)
    a, b = documents[first.job_id], documents[second.job_id]
    assert (a.user_id, a.cloth_id, b.user_id, b.cloth_id) == ("rel", "sameA", "rel2", "sameB")
    assert [i.area_pixels for i in a.all_segmented_items] == [i.area_pixels for i in b.all_segmented_items]
    print(f"same bytes twice at once: cache hits {a.cache_hit}/{b.cache_hit}")


def cached_photo(topo) -> bytes:
    """The bytes of a finished photo: a repeat upload is served from the cache by ingest, so the
    webhook tests take a second each, and the notifier is the same in every function."""
    if not hasattr(topo, "finished_job"):
        job = topo.upload_job(fresh_photo(topo, 4), "rel", "cachebase", "photo.jpg")
        topo.finished_job = (job, topo.wait_for_result(job.job_id, JOB_TIMEOUT))
    job, _ = topo.finished_job
    return topo.read_object("uploads", job.key)


@needs_emulators
@pytest.mark.usefixtures("logs_on_failure")
def test_webhook_answering_500_for_a_while_gets_the_result_after(topo, receiver):
    """The webhook function sends one POST per delivery of its subscription on the results topic;
    a 500 makes it fail the delivery, and Pub/Sub retries with its declared backoff (10 s, 20 s)."""
    data = cached_photo(topo)
    receiver.fail_next(2, "hook500")
    job = topo.upload_job(data, "rel", "hook500", "again.jpg")
    document = topo.wait_for_result(job.job_id, 30)
    assert document.success and document.cache_hit
    assert wait_until(lambda: receiver.for_job(job.job_id), 60)
    time.sleep(1)
    calls = receiver.for_job(job.job_id, delivered=False)
    assert [c["status"] for c in calls] == [500, 500, 204]
    gaps = [later["at"] - earlier["at"] for earlier, later in zip(calls, calls[1:])]
    assert gaps[0] >= 10 - 1 and gaps[1] >= 20 - 1, gaps  # the webhook subscription's declared backoff
    assert len(log_lines(topo, "webhook", job.job_id, "Pub/Sub will retry")) == 2


@needs_emulators
@pytest.mark.usefixtures("logs_on_failure")
def test_webhook_receiver_down_for_a_while_gets_the_result_after(topo, receiver):
    """Connections refused for 25 s: Pub/Sub keeps redelivering to the webhook function (its declared
    backoff, 10-600 s over up to 100 deliveries, about 16 h: here deliveries at 0, 10 and 30 s)
    and the result arrives once the receiver is back. A receiver that never recovers: the result
    ends on the webhook's dead-letter topic (tests/test_strict_standins.py)."""
    data = cached_photo(topo)
    receiver.down()
    went_down = time.monotonic()
    try:
        job = topo.upload_job(data, "rel", "hookdown", "again.jpg")
        document = topo.wait_for_result(job.job_id, 30)
        assert document.success  # on the results topic whatever the webhook does
        assert wait_until(lambda: log_lines(topo, "webhook", job.job_id, "Pub/Sub will retry"), 15)
        time.sleep(max(0.0, went_down + 25 - time.monotonic()))
    finally:
        receiver.up()
    outage = time.monotonic() - went_down
    assert wait_until(lambda: receiver.for_job(job.job_id), 60)
    time.sleep(1)
    calls = receiver.for_job(job.job_id)
    assert len(calls) == 1 and calls[0]["verified"]
    failed = log_lines(topo, "webhook", job.job_id, "Pub/Sub will retry")
    assert len(failed) >= 2 and {e["severity"] for e in failed} == {"WARNING"}
    assert len(topo.results_for(job.job_id)) == 1
    assert not [d for d in topo.watches["webhook_dead_letter"].snapshot() if job.job_id.encode() in d]
    print(f"webhook receiver down {outage:.1f} s: {len(failed)} failed deliveries, delivered "
          f"{calls[0]['at'] - went_down:.1f} s after it went down")


@needs_emulators
@pytest.mark.usefixtures("logs_on_failure")
def test_small_soak(topo, receiver):
    """`make soak` in small: 8 uploads in 4 s, one with fresh bytes (a full run of a photo of eight
    garments), seven repeats of a finished photo (cache hits), every stage message published twice.
    The full-size soak with the model is `python -m closet_pipeline.dev.soak`."""
    report = run_soak(topo, count=8, over_s=4, fresh=1, distinct=1, repeat_of=[cached_photo(topo)], many=1,
                      duplicate=True, timeout_s=JOB_TIMEOUT, user_id="soak", webhook=receiver,
                      log=lambda message: None)
    print(report.table())
    assert report.sent == report.received == 8
    assert report.lost == report.duplicated == report.failed == report.overwritten == 0
    assert report.many_garments == 1 and report.items_per_many[0] >= 2 and report.duplicated_messages >= 8
    assert report.webhook_jobs == 8 and report.webhook_duplicated == 0 and report.webhook_unverified == 0
    assert report.cache_hits == 7


@needs_emulators
@pytest.mark.usefixtures("logs_on_failure")
def test_the_killed_photo_finished_once(topo, receiver, provider):
    """The photo whose remove_background was SIGKILLed (the first test of this module), under the
    declared timeouts: exactly one result, one verified webhook call, the stage done once, the
    provider called twice (the killed attempt and the delivery after the lease ran out)."""
    assert hasattr(topo, "kill_job"), "test_stage_killed_mid_photo_under_the_default_timeouts did not run"
    job, killed_at, restarted_in, before = topo.kill_job
    lease_s = topo.spec("remove_background").timeout_s
    document = topo.wait_for_result(job.job_id, lease_s + 240)
    recovered_in = time.monotonic() - killed_at
    assert document.success, (document.error_code, document.error_message)
    assert document.providers["remove_background"] == "removebg"
    assert wait_until(lambda: receiver.for_job(job.job_id), 30)
    time.sleep(2)
    assert_one_clean_result(topo, receiver, job.job_id, document)
    assert len(log_lines(topo, "remove_background", job.job_id, "stage done")) == 1
    killed_arrival = provider.arrivals[before]
    redelivered = [a for a in provider.arrivals[before + 1:] if a > killed_arrival + lease_s - 5]
    assert redelivered, "the provider was not called again after the lease ran out"
    # Pub/Sub's deliveryAttempt reached the stage (the push front adds it as Pub/Sub does): the
    # cut-out's message says 2 or more.
    tapped = []
    while batch := topo.pull(topo.segment_tap, timeout=5, max_messages=100):
        tapped += batch
    # One cut-out message (the small soak republishes what it sees on the stage topics: a copy has the
    # same bytes).
    cutouts = list({m.data: json.loads(m.data) for m in tapped if m.attributes.get("jobId") == job.job_id}.values())
    assert len(cutouts) == 1 and cutouts[0]["attempt"] >= 2, cutouts
    assert recovered_in >= lease_s - 5, recovered_in  # not before the dead delivery's lease ran out
    print(f"remove_background killed mid-photo under the default timeouts: restarted in {restarted_in:.1f} s, "
          f"finished on delivery {cutouts[0]['attempt']}, redelivered to the provider "
          f"{redelivered[0] - killed_at:.1f} s after the kill, result {recovered_in:.1f} s after it")


@needs_emulators
def test_no_secret_in_any_log_or_result(topo, provider):
    """Every process's log (functions, emulators) and every result after the tests above: the
    configured secrets and keys never appear (the remove.bg key and the webhook secret were used)."""
    assert provider.requests and all(r.headers["x-api-key"] == SECRETS["CLOSET_REMOVEBG_API_KEY"]
                                     for r in provider.requests)
    texts = {path.name: path.read_text(errors="replace") for path in topo.log_dir.glob("*.log")}
    assert "function-deliver.log" in texts and "function-remove_background.log" in texts
    results = "\n".join(d.model_dump_json() for d in topo.results)
    for name, secret in SECRETS.items():
        for log_name, text in texts.items():
            assert secret not in text, f"{name} appears in {log_name}"
        assert secret not in results, f"{name} appears in a result document"
