"""The whole topology on emulators: the Pub/Sub emulator, fake-gcs-server and one functions-framework
server per function, wired from shared/topology.json (closet_pipeline/dev/topology.py).

Real photos uploaded to the emulated bucket travel GCS notification -> ingest -> remove_background ->
segment -> expand -> deliver and come back on the results topic and as one signed webhook call.
Redelivery, bad uploads, poison messages, warm-ups, the cache and signed upload URLs are checked
against the same running topology (one per module).
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from closet_pipeline.bench.hops import read_hops
from shared.documents import ResultDocument
from shared.layout import job_id_for
from shared.runtime.webhook import HEADER, verify
from tests.polling import wait_until
from tests.topology_helpers import TopologyUnderTest

PHOTOS = sorted((Path(__file__).parent / "data" / "photos").glob("*.jpg"))
WEBHOOK_SECRET = "topology-test-secret"
UPLOAD_SECRET = "upload-url-test-secret"
JOB_TIMEOUT = 120  # seconds; two CPUs run IS-Net for several photos at once
WORKING_MAX_SIDE = 1200




pytestmark = pytest.mark.usefixtures("emulator_tools")


class Webhook:
    """A local receiver that checks each call's signature and records it."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                signature = self.headers.get(HEADER, "")
                ok = verify(WEBHOOK_SECRET, body, signature)
                with outer.lock:
                    outer.calls.append({"body": json.loads(body), "verified": ok})
                self.send_response(204 if ok else 401)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/closet-webhook"

    def for_job(self, job_id: str) -> list[dict]:
        with self.lock:
            return [c for c in self.calls if c["body"].get("jobId") == job_id]

    def document(self, job_id: str) -> ResultDocument:
        """The result as the webhook delivered it: its links signed for that delivery."""
        return ResultDocument.model_validate(self.for_job(job_id)[-1]["body"])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def webhook():
    receiver = Webhook()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def topo(webhook):
    env = {
        "CLOSET_WEBHOOK_URL": webhook.url,
        "CLOSET_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CLOSET_UPLOAD_URL_SECRET": UPLOAD_SECRET,
        "CLOSET_EXPAND_POLICY": "never",  # no generative provider here
    }
    topology = TopologyUnderTest(env)
    try:
        topology.start()
        # A tap on the segment topic: test_duplicate_stage_message re-publishes one of its messages.
        topology.segment_tap = topology.add_pull_subscription(topology.topic_of("segment"), "test-tap-segment")
        yield topology
    finally:
        topology.stop()
        topology.remove_workdir()


@pytest.fixture(autouse=True)
def logs_on_failure(request, topo):
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed > failed_before:  # the call's report is counted before teardown
        print(topo.log_tails(40))


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def _log_lines(topo: TopologyUnderTest, function: str, job_id: str | None = None, message: str | None = None) -> list[dict]:
    lines = []
    for raw in topo.function_log(function).splitlines():
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if job_id is not None and entry.get("jobId") != job_id:
            continue
        if message is not None and message not in entry.get("message", ""):
            continue
        lines.append(entry)
    return lines



def _expected_working_size(photo: Path) -> tuple[int, int]:
    with Image.open(photo) as image:
        width, height = ImageOps.exif_transpose(image).size
    scale = min(1.0, WORKING_MAX_SIDE / max(width, height))
    return round(width * scale), round(height * scale)


# -- tests, in the order they run ------------------------------------------------------------------
def test_warm_up_messages_start_no_job(topo):
    """warmup=true to every stage topic only loads models (this also warms IS-Net for the next tests)."""
    for stage in topo.stages:
        topo.publish(stage["topic"], b"{}", {"warmup": "true"})
    topo.publish(topo.dead_letter_topic, b"{}", {"warmup": "true"})
    # remove_background's warm-up loads IS-Net; give every push time to be handled (or retried).
    time.sleep(6)
    assert topo.results == []
    assert topo.progress == []
    assert topo.dead_letters == [b"{}"]  # only the one published above: nothing was dead-lettered
    assert topo.list_objects("work") == []
    for stage in topo.stages:
        assert "Traceback" not in topo.function_log(stage["name"]), stage["name"]


def test_photos_produce_results_and_one_webhook_each(topo, webhook):
    jobs = {}
    for index, photo in enumerate(PHOTOS):
        jobs[photo] = topo.upload_job(photo, "1", f"photo{index}", photo.name)
    for photo, job in jobs.items():
        document = topo.wait_for_result(job.job_id, JOB_TIMEOUT)
        assert document.success, (photo.name, document.error_code, document.error_message)
        assert document.cloth_id == f"photo{PHOTOS.index(photo)}" and document.user_id == "1"
        assert document.cache_hit is False
        assert document.all_segmented_items, photo.name
        # The result on the topic names the job's files; the webhook signs them for its delivery.
        assert document.urls() and not [u for u in document.urls() if "://" in u or "?" in u], document.urls()
        assert wait_until(lambda j=job: webhook.for_job(j.job_id), 10)
        delivered = webhook.document(job.job_id)
        assert delivered.model_copy(update={"finished_at": document.finished_at}).with_urls(
            lambda url: url.split("?")[0].rsplit(f"/{job.job_id}/", 1)[1]) == document
        for url in delivered.urls():
            assert url.startswith(topo.public_gcs_url) and "X-Goog-Signature=" in url, url
            assert _get(url), url  # readable through the strict front, which checks the signature
        cutout = Image.open(io.BytesIO(_get(delivered.removed_bg_image_url)))
        assert cutout.mode == "RGBA"
        expected = _expected_working_size(photo)
        assert abs(cutout.size[0] - expected[0]) <= 1 and abs(cutout.size[1] - expected[1]) <= 1, (cutout.size, expected)
        assert document.timings.keys() >= {s["name"] for s in topo.stages}
        # Progress arrives on its own subscription: possibly after the result.
        assert topo.wait_for_progress(lambda e, j=job.job_id: e.job_id == j and e.current_step.value == "COMPLETED", 10)
        assert "FAILED" not in [e.current_step.value for e in topo.progress_for(job.job_id)]
    for job in jobs.values():
        assert wait_until(lambda j=job: webhook.for_job(j.job_id), 10)
    time.sleep(1)
    # Under the strict stand-ins (timestamped signed URLs, per-object write rate, declared access)
    # a clean photo fails no delivery on the way: every stage's first try succeeds.
    for name in topo.functions:
        assert "Traceback" not in topo.function_log(name), (name, topo.function_log(name)[-3000:])
    refused = topo.front_refusals()
    assert not [r for r in refused if r[3] != 429], refused  # nothing beyond what topology.json grants
    print(f"{len(PHOTOS)} photos under the strict stand-ins: {len(refused)} writes refused 429 (the client retried them)")
    # Every stage's delivery logged its hop line (shared/runtime/trace.py), which the bench's hop table reads.
    hops = read_hops({name: topo.function_log(name) for name in topo.functions})
    for job in jobs.values():
        logged = [h for h in hops if h.get("jobId") == job.job_id and "forwardedMs" in h]
        assert {h["function"] for h in logged} == {s["name"] for s in topo.stages}, logged
        assert all(h["waitedMs"] >= 0 and h["decodedMs"] <= h["forwardedMs"] <= h["totalMs"] for h in logged), logged
    for job in jobs.values():
        assert len(topo.results_for(job.job_id)) == 1
        calls = webhook.for_job(job.job_id)
        assert len(calls) == 1 and calls[0]["verified"], calls
        assert calls[0]["body"]["success"] is True
    topo.photo_jobs = list(jobs.items())


def test_duplicate_messages_give_one_result(topo, webhook):
    """A redelivered GCS notification and a re-published stage message of finished work do nothing."""
    photo, job = topo.photo_jobs[0]
    # The same notification again (same object generation -> same job id).
    attributes = {"eventType": "OBJECT_FINALIZE", "payloadFormat": "JSON_API_V1", "bucketId": topo.buckets["uploads"],
                  "objectId": job.key, "objectGeneration": str(job.generation)}
    body = json.dumps({"name": job.key, "bucket": topo.buckets["uploads"], "generation": str(job.generation)}).encode()
    assert job_id_for(job.key, job.generation) == job.job_id
    topo.publish(topo.ingest_topic, body, attributes)
    # One of the segment messages the pipeline published, published once more.
    tapped = [m for m in topo.pull(topo.segment_tap, timeout=10, max_messages=50) if b'"job"' in m.data]
    assert tapped, "the segment tap saw no job's message"
    again = tapped[-1]
    again_job = json.loads(again.data)["job"]["jobId"]
    topo.publish(topo.topic_of("segment"), again.data, dict(again.attributes))

    # Both outcomes went out long ago: the duplicates find them delivered and publish nothing.
    assert wait_until(lambda: _log_lines(topo, "ingest", job.job_id, "duplicate of a delivered message"), 60)
    assert wait_until(lambda: _log_lines(topo, "segment", again_job, "duplicate of a delivered message"), 60)
    time.sleep(2)
    for job_id in {job.job_id, again_job}:
        assert len(topo.results_for(job_id)) == 1
        assert len(webhook.for_job(job_id)) == 1
    assert len(topo.dead_letters) == 1  # the warm-up's only


def test_bad_upload_fails_once_without_retries(topo, webhook):
    job = topo.upload_job(b"this is not a photo, only text\n" * 10, "2", "badfile", "notes.jpg")
    document = topo.wait_for_result(job.job_id, 30)
    assert document.success is False
    assert document.error_code == "UNSUPPORTED_FORMAT"
    assert wait_until(lambda: webhook.for_job(job.job_id), 10)
    time.sleep(3)  # a retry storm would show within this time (the emulator retries every second)
    assert len(_log_lines(topo, "ingest", job.job_id, "stage done")) == 1
    assert len(topo.results_for(job.job_id)) == 1
    assert len(webhook.for_job(job.job_id)) == 1
    assert not [d for d in topo.dead_letters if job.job_id.encode() in d]
    assert topo.wait_for_progress(lambda e: e.job_id == job.job_id, 10)
    assert [e.current_step.value for e in topo.progress_for(job.job_id)] == ["FAILED"]


def test_refused_path_starts_no_job(topo):
    key = "uploads/onlyonelevel.jpg"
    job = topo.upload_job(PHOTOS[0], "x", "x", "x", key=key)
    assert wait_until(lambda: [e for e in _log_lines(topo, "ingest", message="upload refused") if key in e["message"]], 20)
    time.sleep(3)
    assert len([e for e in _log_lines(topo, "ingest", message="upload refused") if key in e["message"]]) == 1
    assert topo.results_for(job.job_id) == []
    assert topo.progress_for(job.job_id) == []
    assert not [d for d in topo.dead_letters if key.encode() in d]


def test_poison_message_ends_internal_error_on_its_third_delivery(topo, webhook):
    """A message whose cut-out is not an image: PIL's error is no PipelineError (a bug, as far as
    the pipeline knows), so it is retried (after the declared 10 s, then 20 s), and the delivery
    Pub/Sub numbers 3 (deliveryAttempt, added by the push front as Pub/Sub adds it) ends the job
    INTERNAL_ERROR: not dead-lettered."""
    job_id = "poison-" + uuid.uuid4().hex[:8]
    cutout = f"work/{job_id}/cutout.png"
    topo.storage_client().bucket(topo.buckets["work"]).blob(cutout).upload_from_string(
        b"not a png at all", content_type="image/png")
    message = {
        "schemaVersion": 1,
        "job": {"jobId": job_id, "clothId": "poison", "userId": "3", "upload": "uploads/3/poison/p.jpg",
                "uploadName": "p.jpg"},
        "attempt": 1, "cutout": cutout, "cacheKey": "0" * 32,
    }
    started = time.monotonic()
    topo.publish(topo.topic_of("segment"), json.dumps(message).encode(), {"jobId": job_id})
    document = topo.wait_for_result(job_id, 120)
    elapsed = time.monotonic() - started
    assert elapsed >= 30 - 1, elapsed  # the declared backoff: 10 s after the 1st failure, 20 s after the 2nd
    assert document.success is False
    assert document.error_code == "INTERNAL_ERROR"
    assert "segment" in (document.error_message or "")
    assert not [d for d in topo.dead_letters if job_id.encode() in d]
    assert len(_log_lines(topo, "segment", job_id, "kept failing unexpectedly")) == 1
    assert wait_until(lambda: webhook.for_job(job_id), 10)
    time.sleep(2)
    assert len(topo.results_for(job_id)) == 1
    assert len(webhook.for_job(job_id)) == 1 and webhook.for_job(job_id)[0]["verified"]
    assert topo.wait_for_progress(lambda e: e.job_id == job_id, 10)
    assert [e.current_step.value for e in topo.progress_for(job_id)] == ["FAILED"]
    print(f"poison message ended INTERNAL_ERROR on its 3rd delivery and reported in {elapsed:.1f}s")


def test_same_bytes_again_is_a_cache_hit(topo, webhook):
    photo, first_job = topo.photo_jobs[1]
    first = topo.wait_for_result(first_job.job_id, 1)
    started = time.monotonic()
    job = topo.upload_job(photo, "1", "again1", "again.jpg")
    document = topo.wait_for_result(job.job_id, 30)
    elapsed = time.monotonic() - started
    assert document.success and document.cache_hit is True
    assert elapsed < 10, elapsed
    assert len(document.all_segmented_items) == len(first.all_segmented_items)
    assert wait_until(lambda: webhook.for_job(job.job_id), 30)
    for url in webhook.document(job.job_id).urls():
        assert _get(url)
    assert "remove_background" not in _log_lines_jobs(topo, job.job_id)


def _log_lines_jobs(topo: TopologyUnderTest, job_id: str) -> set[str]:
    """The functions that logged 'stage done' for a job."""
    return {s["name"] for s in topo.stages if _log_lines(topo, s["name"], job_id, "stage done")}


def test_signed_upload_url_put_starts_the_pipeline(topo):
    endpoint = topo.functions["upload_url"]
    request_body = {"userId": "4", "clothId": "signed1", "fileName": "shirt.jpg", "contentType": "image/jpeg"}

    def call(body, token):
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(endpoint, data=json.dumps(body).encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    assert call(request_body, None)[0] == 401
    assert call(request_body, "wrong")[0] == 401
    assert call({**request_body, "contentType": "text/plain"}, UPLOAD_SECRET)[0] == 400
    assert call({**request_body, "fileName": "a/b.jpg"}, UPLOAD_SECRET)[0] == 400
    assert call({**request_body, "userId": "../x"}, UPLOAD_SECRET)[0] == 400
    status, answer = call(request_body, UPLOAD_SECRET)
    assert status == 200, answer
    assert answer["method"] == "PUT" and answer["objectKey"] == "uploads/4/signed1/shirt.jpg"
    assert answer["headers"]["Content-Type"] == "image/jpeg"
    assert re.fullmatch(r"0,\d+", answer["headers"]["x-goog-content-length-range"])
    assert "X-Goog-Signature=" in answer["url"] and "x-goog-content-length-range" in answer["url"]
    assert answer["url"].startswith(topo.public_gcs_url)

    put = urllib.request.Request(answer["url"], data=PHOTOS[2].read_bytes(), headers=answer["headers"], method="PUT")
    with urllib.request.urlopen(put, timeout=30) as response:
        assert response.status in (200, 201)
    blob = topo.storage_client().bucket(topo.buckets["uploads"]).get_blob(answer["objectKey"])
    assert blob is not None and blob.size == PHOTOS[2].stat().st_size
    document = topo.wait_for_result(job_id_for(blob.name, blob.generation), JOB_TIMEOUT)
    assert document.success and document.cloth_id == "signed1"


# -- the zips are what runs: a broken zip fails the topology -----------------------------------------
def _drop_line(path: Path, prefix: str) -> None:
    lines = path.read_text().splitlines()
    kept = [line for line in lines if not line.startswith(prefix)]
    assert len(kept) == len(lines) - 1, f"{path} has no line starting with {prefix!r}"
    path.write_text("\n".join(kept) + "\n")


@pytest.mark.parametrize("breakage", ["a module deleted from the zip", "a line deleted from its requirements"])
def test_a_function_served_from_a_broken_zip_fails_the_topology(breakage, tmp_path):
    """Every function runs from its unpacked zip in an environment made from that zip's requirements
    alone: the webhook's zip without shared/runtime/webhook.py, or its requirements without httpx,
    and the topology does not start (the function dies at import), naming what is missing."""
    def prepare(name: str, folder: Path) -> None:
        if breakage.startswith("a module"):
            (folder / "shared" / "runtime" / "webhook.py").unlink()
        else:
            _drop_line(folder / "requirements.txt", "httpx==")

    topology = TopologyUnderTest({"CLOSET_WEBHOOK_URL": "http://127.0.0.1:9/hook", "CLOSET_WEBHOOK_SECRET": "s"},
                             watch=False, only=["webhook"], prepare=prepare, workdir=tmp_path / "topology")
    with pytest.raises(Exception) as failure:
        topology.start()
    topology.stop()
    missing = "shared.runtime.webhook" if breakage.startswith("a module") else "httpx"
    assert "function-webhook exited" in str(failure.value), failure.value
    assert f"No module named '{missing}'" in str(failure.value), failure.value
