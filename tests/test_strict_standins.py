"""The local stand-ins are as strict as Google Cloud where the emulators are not (issue 11):

- storage access only as topology.json declares per function (GCS 403; Terraform grants exactly that);
- about one write per second per object (GCS 429 rateLimitExceeded, TooManyRequests in the client);
- signed URLs that carry their signing time, expire, and are verified (GCS 400/403);
- each function's timeout from topology.json, then Pub/Sub redelivers;
- each subscription's declared retry policy: backoff, delivery attempts, dead-lettering (push front);
- `deliveryAttempt` in the push body, as Pub/Sub sends it with a dead-letter policy, read by the handler;
- a signed upload's size range: a larger body is refused, nothing stored (GCS 400);
- publishing only to the topics a function declares (the emulator has no IAM);
- a function process that dies is started again (as Cloud Run starts a new instance);
- the webhook from its own subscription on the results topic: Pub/Sub retries, then its dead-letter topic.

The first tests need no emulator; the rest share one strict topology whose copy of topology.json
gives remove_background a 1 s timeout, and the stages and the webhook 5 deliveries 1-2 s apart.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from google.api_core import exceptions as gexc

from closet_pipeline.dev.keys import generate_service_account_info
from closet_pipeline.dev.strict_gcs import Refusal, check_signed_url
from closet_pipeline.dev.strict_push import PushFront
from closet_pipeline.dev.topology import TOPOLOGY_JSON
from shared.documents import ProgressEvent, ProgressStep, ResultDocument
from shared.runtime.webhook import HEADER, verify
from tests.fakes.http import FakeHttpServer, Reply
from tests.polling import wait_until
from tests.topology_helpers import TopologyUnderTest

DATA = Path(__file__).parent / "data"
ENVELOPE = json.loads((DATA / "pubsub" / "emulator_push_envelope.json").read_text())
PHOTO = min((DATA / "photos").glob("*.jpg"))
WEBHOOK_SECRET = "strict-standins-webhook-secret"


def _http(url: str, method: str = "GET", data: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:  # refused or reset: nothing listens
        return 0, b""



# == without emulators ============================================================================
def test_push_front_applies_the_declared_policy_as_pubsub_does():
    """The emulator's push body (captured) has no deliveryAttempt, and its backoff is its own. The
    push front holds each redelivery back until the declared backoff has passed (1 s, then 2 s:
    not forwarded, not counted), numbers the deliveries it forwards 1, 2, 3, and after the declared
    3 dead-letters the message with Pub/Sub's attributes and acknowledges it. A subscription without
    a policy (not pushed by the topology) is passed through unnumbered."""
    assert "deliveryAttempt" not in ENVELOPE
    now = [1000.0]
    dead: list = []
    policy = {"function": "f", "minimumBackoffSeconds": 1, "maximumBackoffSeconds": 2, "maxDeliveryAttempts": 3,
              "deadLetterTopic": "projects/proj/topics/dead"}
    with FakeHttpServer(lambda request: Reply(500)) as function:
        received = function.requests
        front = PushFront({"f": function.url}, {ENVELOPE["subscription"]: policy}, clock=lambda: now[0],
                          publish=lambda topic, data, attributes: dead.append((topic, data, attributes)))
        port = front.listen()

        def push(envelope=ENVELOPE) -> int:
            return _http(f"http://127.0.0.1:{port}/f/projects/p/topics/t", "POST", json.dumps(envelope).encode(),
                         {"Content-Type": "application/json"})[0]

        try:
            statuses = [push()]                      # delivery 1 fails
            statuses.append(push())                  # at once: held back
            now[0] += 1.0
            statuses.append(push())                  # after 1 s: delivery 2 fails
            now[0] += 1.5
            statuses.append(push())                  # 1.5 s of the 2 s: held back
            now[0] += 0.5
            statuses.append(push())                  # delivery 3 fails: dead-lettered, acknowledged
            statuses.append(push())                  # the emulator lagging: acknowledged again
            other = {**ENVELOPE, "subscription": "projects/proj/subscriptions/not-declared"}
            passed = push(other)
            unknown = _http(f"http://127.0.0.1:{port}/nobody/x", "POST", b"{}")[0]
        finally:
            front.server.shutdown()
            front.server.server_close()
    assert statuses == [500, 503, 500, 503, 204, 204]
    bodies = [json.loads(r.body) for r in received]
    assert [b.get("deliveryAttempt") for b in bodies] == [1, 2, 3, None] and passed == 500
    assert all(r.path == "/projects/p/topics/t" for r in received)
    assert bodies[0]["message"] == ENVELOPE["message"]
    assert front.held == 2 and unknown == 404
    [(topic, data, attributes)] = dead
    assert topic == "projects/proj/topics/dead" and data == b"hello"
    assert attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "3" and attributes["a"] == "b"
    assert attributes["CloudPubSubDeadLetterSourceSubscription"] == ENVELOPE["subscription"].rsplit("/", 1)[-1]


def test_the_handler_reads_delivery_attempt_from_the_raw_push_body(caplog):
    """functions-framework turns the push body into a CloudEvent without deliveryAttempt; the
    handler reads it from the request itself (attempt 1 when Pub/Sub sends none). The message's
    publishTime survives the conversion: each delivery's hop line says how long its push waited."""
    import logging

    import flask
    from functions_framework.event_conversion import background_event_to_cloud_event

    from shared.runtime.entry.push import pushed_handler

    caplog.set_level(logging.INFO, logger="closet.trace")
    seen = []
    handle = pushed_handler("segment", seen.append, lambda: None)
    app = flask.Flask(__name__)
    for envelope in ({**ENVELOPE, "deliveryAttempt": 3}, ENVELOPE):
        with app.test_request_context("/projects/proj/topics/t", method="POST", json=envelope):
            handle(background_event_to_cloud_event(flask.request))
    assert [(p.data, p.attributes, p.delivery_attempt) for p in seen] == [(b"hello", {"a": "b"}, 3),
                                                                          (b"hello", {"a": "b"}, 1)]
    hops = [r.hop for r in caplog.records if r.name == "closet.trace"]
    assert [(h["function"], h["attempt"]) for h in hops] == [("segment", 3), ("segment", 1)]
    assert all(h["waitedMs"] > 0 for h in hops)  # published when the envelope was captured, long ago


def _signed(credentials, *, method="GET", expires_s=60, endpoint="http://127.0.0.1:9", key="results/a b.png", **kw):
    from google.cloud.storage._signing import generate_signed_url_v4

    return generate_signed_url_v4(credentials, f"/closet-results/{urllib.parse.quote(key)}",
                                  expiration=datetime.timedelta(seconds=expires_s), api_access_endpoint=endpoint,
                                  method=method, **kw)


def _check(url: str, public_key, method: str = "GET", headers: dict | None = None, now: float | None = None) -> str:
    split = urllib.parse.urlsplit(url)
    pairs = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
    return check_signed_url(method, split.path, pairs, {"host": split.netloc, **(headers or {})},
                            {"signer@p.iam.gserviceaccount.com": public_key}, now=now)


def test_signed_urls_are_verified_and_expire_as_gcs_checks_them():
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from google.oauth2 import service_account

    info = generate_service_account_info("p", "signer@p.iam.gserviceaccount.com")
    credentials = service_account.Credentials.from_service_account_info(info)
    public_key = load_pem_private_key(info["private_key"].encode(), None).public_key()
    url = _signed(credentials)
    assert _check(url, public_key) == "signer@p.iam.gserviceaccount.com"
    put = _signed(credentials, method="PUT", content_type="image/jpeg",
                  headers={"x-goog-content-length-range": "0,100"})
    assert _check(put, public_key, "PUT", {"content-type": "image/jpeg", "x-goog-content-length-range": "0,100"})

    def refused(*args, **kwargs) -> tuple[int, str]:
        with pytest.raises(Refusal) as caught:
            _check(*args, **kwargs)
        return caught.value.status, caught.value.body.decode()

    status, body = refused(url, public_key, now=time.time() + 61)
    assert status == 400 and "<Code>ExpiredToken</Code>" in body
    assert refused(url, public_key, "PUT")[0] == 403  # a GET URL used to write
    assert refused(put, public_key, "PUT", {"content-type": "image/png",  # another type than signed
                                            "x-goog-content-length-range": "0,100"})[0] == 403
    assert refused(url.replace("a%20b.png", "other.png"), public_key)[0] == 403
    tampered = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    assert refused(tampered, public_key)[0] == 403
    stranger = service_account.Credentials.from_service_account_info(generate_service_account_info(
        "p", "signer@p.iam.gserviceaccount.com"))  # same name, another key
    assert refused(_signed(stranger), public_key)[0] == 403
    assert refused(url.split("&X-Goog-Signature=")[0], public_key)[0] == 400  # malformed: no signature
    assert refused(url.replace("X-Goog-Expires=60", "X-Goog-Expires=604801"), public_key)[0] == 400


# == against the strict topology ==================================================================
class Receiver(FakeHttpServer):
    """The app's webhook endpoint: 410 for cloth "gone", 500 for cloth "flaky", else 204."""

    def __init__(self) -> None:
        super().__init__(self._answer)
        self.lock = threading.Lock()

    def _answer(self, request) -> Reply:
        cloth = json.loads(request.body).get("clothId")
        return Reply({"gone": 410, "flaky": 500}.get(cloth, 204))

    def for_cloth(self, cloth_id: str) -> list:
        return [r for r in list(self.requests) if json.loads(r.body).get("clothId") == cloth_id]


@pytest.fixture(scope="module")
def receiver():
    with Receiver() as server:
        yield server


@pytest.fixture(scope="module")
def topo(emulator_tools, receiver, tmp_path_factory):
    raw = json.loads(TOPOLOGY_JSON.read_text())
    next(s for s in raw["stages"] if s["name"] == "remove_background")["timeoutSeconds"] = 1  # IS-Net alone needs about 2 s
    raw["delivery"].update(maxDeliveryAttempts=5, minimumBackoffSeconds=1, maximumBackoffSeconds=2)
    next(s for s in raw["subscribers"] if s["name"] == "webhook").update(
        maxDeliveryAttempts=5, minimumBackoffSeconds=1, maximumBackoffSeconds=2)
    copy = tmp_path_factory.mktemp("strict") / "topology.json"
    copy.write_text(json.dumps(raw))
    env = {"CLOSET_WEBHOOK_URL": receiver.url + "/hook", "CLOSET_WEBHOOK_SECRET": WEBHOOK_SECRET,
           "CLOSET_EXPAND_POLICY": "never", "CLOSET_BACKGROUND_PROVIDERS": "local",
           "CLOSET_UPLOAD_URL_SECRET": "strict-upload-secret"}
    topology = TopologyUnderTest(env, topology_file=copy)
    assert topology.strict, "the stand-ins are strict by default"
    try:
        topology.start()
        yield topology
    finally:
        topology.stop()
        topology.remove_workdir()


@pytest.fixture(autouse=True)
def logs_on_failure(request):
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed > failed_before and "topo" in request.fixturenames:
        print(request.getfixturevalue("topo").log_tails(40))


def _client(topo: TopologyUnderTest, listener: str):
    from shared.adapters.blobstore.gcs import storage_client

    return storage_client(topo.project, emulator=f"http://127.0.0.1:{topo.front_ports[listener]}")


def test_each_function_touches_only_what_topology_json_declares(topo):
    """Every function x every area, through that function's own storage endpoint: reading is allowed
    where it reads or writes (an HTTP function's writes are signed uploads: create only, as
    Terraform's objectCreator), writing where it writes, everything else is a 403, as in GCS."""
    http = {spec.name for spec in topo.specs if spec.kind == "http"}
    got, expected = {}, {}
    for spec in topo.specs:
        name = spec.name
        client = _client(topo, name)
        for area, bucket in topo.buckets.items():
            try:
                list(client.list_blobs(bucket, max_results=1))
                readable = True
            except gexc.Forbidden:
                readable = False
            try:
                client.bucket(bucket).blob(f"{area}/strict-probe/{name}").upload_from_string(b"x", retry=None)
                writable = True
            except gexc.Forbidden:
                writable = False
            got[(name, area)] = (readable, writable)
            expected[(name, area)] = (area in spec.reads or (area in spec.writes and name not in http),
                                      area in spec.writes)
        with pytest.raises(gexc.Forbidden):
            client.create_bucket(f"strict-{name.replace('_', '-')}")
    assert got == expected
    assert any(not w for _, w in got.values()) and any(w for _, w in got.values())
    # Without a signature the public endpoint answers as GCS answers an anonymous caller.
    status, _ = _http(f"{topo.public_gcs_url}/storage/v1/b/{topo.buckets['results']}/o")
    assert status == 401


def test_more_than_about_one_write_per_second_to_one_object_is_429(topo):
    bucket = _client(topo, "admin").bucket(topo.buckets["work"])
    hot = bucket.blob("work/strict-rate/state.json")
    for _ in range(2):  # the burst allowance
        hot.upload_from_string(b"{}", retry=None)
    with pytest.raises(gexc.TooManyRequests) as caught:
        hot.upload_from_string(b"{}", retry=None)
    assert "exceeded the rate limit" in str(caught.value)  # GCS's own words
    with pytest.raises(gexc.TooManyRequests):
        hot.delete(retry=None)  # deleting is a write too
    bucket.blob("work/strict-rate/other.json").upload_from_string(b"{}", retry=None)  # per object
    time.sleep(1.1)
    hot.upload_from_string(b"{}", retry=None)  # one per second goes through


def test_store_links_are_signed_timestamped_and_expire(topo, monkeypatch):
    """GcsBlobStore.url signs a real V4 URL against the emulator too: it changes with the time it
    was signed (what broke the cache's URL->name map, issue 11 item 1), it works until its TTL, then
    GCS's 400; it carries its signer's rights only."""
    from shared.adapters.blobstore.gcs import GcsBlobStore

    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(topo.key_files["deliver"]))
    store = GcsBlobStore(_client(topo, "deliver"), topo.buckets, signed_url_ttl_s=3, public_endpoint=topo.public_gcs_url)
    key = "results/strict/link/cutout.png"
    store.write(key, b"\x89PNG fake", content_type="image/png")
    url = store.url(key)
    assert url.startswith(topo.public_gcs_url) and "X-Goog-Date=" in url and "X-Goog-Expires=3&" in url, url
    assert _http(url) == (200, b"\x89PNG fake")
    time.sleep(1.1)
    assert store.url(key) != url  # signed anew: another time, another URL
    assert _http(url.replace("X-Goog-Signature=", "X-Goog-Signature=00"))[0] == 403
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(topo.key_files["upload_url"]))
    foreign = GcsBlobStore(_client(topo, "upload_url"), topo.buckets, public_endpoint=topo.public_gcs_url).url(key)
    assert _http(foreign)[0] == 403  # upload_url may not read results, so neither may its links
    time.sleep(max(0.0, 3.2 - 1.1))
    status, body = _http(url)
    assert status == 400 and b"ExpiredToken" in body


def test_publishing_to_a_topic_not_declared_is_refused(topo, monkeypatch):
    """The emulator has no IAM: each function is told the topics topology.json lets it publish to
    and the bus refuses the others with PermissionDenied (what Pub/Sub answers without the grant)."""
    from shared.adapters.bus.pubsub import ALLOWED_TOPICS_ENV, PubSubBus
    from shared.errors import TransientError

    allowed = topo.function_env("segment")[ALLOWED_TOPICS_ENV]
    assert set(allowed.split(",")) == {topo.topic_of("expand"), topo.progress_topic, topo.results_topic}
    monkeypatch.setenv(ALLOWED_TOPICS_ENV, allowed)
    bus = PubSubBus(topo.project)
    with pytest.raises(TransientError) as caught:
        bus.publish(topo.ingest_topic, b"{}")
    assert isinstance(caught.value.__cause__, gexc.PermissionDenied)
    event = ProgressEvent(job_id="strict-topics", cloth_id="c", user_id="u", status="PROCESSING",
                          current_step=ProgressStep.ANALYZING, progress_percentage=30)
    bus.publish(topo.progress_topic, event.to_json())  # declared: goes through


def test_a_stage_past_its_timeout_is_cut_off_and_redelivered(topo):
    """remove_background gets 1 s here (topology copy): each delivery is cut off by the function's
    timeout, Pub/Sub redelivers it (1-2 s apart), and after the copy's 5 deliveries the dead-letter
    handler ends the job."""
    started = time.monotonic()
    job = topo.upload_job(PHOTO, "strict", "timeout", PHOTO.name)
    document = topo.wait_for_result(job.job_id, 180)
    elapsed = time.monotonic() - started
    assert document.success is False and document.error_code == "RETRIES_EXHAUSTED", document
    assert "cloth-remove-background" in document.error_message
    cut_off = topo.function_log("remove_background").count("WORKER TIMEOUT")
    assert cut_off >= 4
    assert "stage done" not in topo.function_log("remove_background")
    print(f"remove_background with a 1 s timeout: {cut_off} deliveries cut off, dead-lettered and ended "
          f"RETRIES_EXHAUSTED {elapsed:.1f} s after the upload")


def test_webhook_is_retried_by_pubsub_then_dead_lettered(topo, receiver):
    """The webhook function sends one POST per delivery of its own subscription on the results topic:
    a 500 is retried by Pub/Sub (5 deliveries in this copy), then the result lands on the webhook's
    dead-letter topic; each try is signed."""
    document = ResultDocument(job_id="strict-flaky", cloth_id="flaky", user_id="u", success=False,
                              error_code="EMPTY_FILE", error_message="The uploaded file is empty.")
    started = time.monotonic()
    topo.publish(topo.results_topic, document.to_json(), {"jobId": document.job_id})
    dead = topo.watches["webhook_dead_letter"]
    assert dead.wait(lambda data: b"strict-flaky" in data, 90), receiver.for_cloth("flaky")
    elapsed = time.monotonic() - started
    tries = receiver.for_cloth("flaky")
    assert len(tries) == 5
    assert all(verify(WEBHOOK_SECRET, r.body, r.headers[HEADER.lower()]) for r in tries)
    print(f"webhook answering 500: 5 signed tries, then on the webhook's dead-letter topic after {elapsed:.1f} s")


def test_webhook_refused_for_good_is_not_retried(topo, receiver):
    document = ResultDocument(job_id="strict-gone", cloth_id="gone", user_id="u", success=False,
                              error_code="EMPTY_FILE", error_message="The uploaded file is empty.")
    topo.publish(topo.results_topic, document.to_json(), {"jobId": document.job_id})
    assert wait_until(lambda: receiver.for_cloth("gone"), 20)
    time.sleep(4)  # a retry would come within the copy's 1-2 s backoff
    assert len(receiver.for_cloth("gone")) == 1
    assert not topo.watches["webhook_dead_letter"].wait(lambda data: b"strict-gone" in data, 0)
    assert "HTTP 410" in topo.function_log("webhook")


def test_a_function_that_dies_is_started_again(topo):
    """As Cloud Run starts a new instance: the supervisor restarts a killed function on its port."""
    url = topo.functions["status"]
    topo.kill_function("status")
    killed = time.monotonic()
    assert _http(url)[0] == 0  # nobody listens now
    assert wait_until(lambda: ("status", -9) in topo.restarts, 30), topo.restarts
    # Answering again (401: no bearer token) once the new process is up.
    assert wait_until(lambda: _http(f"{url}/?userId=u&jobId=nothing")[0] == 401, 30)
    print(f"status killed: answering again {time.monotonic() - killed:.1f} s later")


def test_a_signed_upload_carries_the_pick_it_was_signed_with(topo):
    """upload_url signs the user's pick (x-goog-meta-category) into the URL: the PUT goes through
    with that value, directly and through the demo page's proxy, and is refused with another."""
    from closet_pipeline.dev.web import DevWeb

    body = {"userId": "strict", "clothId": "pick", "fileName": "p.jpg", "contentType": "image/jpeg",
            "category": "SHOES"}
    status, raw = _http(topo.functions["upload_url"], "POST", json.dumps(body).encode(),
                        {"Content-Type": "application/json", "Authorization": f"Bearer {topo.upload_url_secret}"})
    assert status == 200, raw
    answer = json.loads(raw)
    assert answer["headers"]["x-goog-meta-category"] == "SHOES"
    data = b"not a photo"  # ingest refuses it at once: no model run for this test
    picked_other = {**answer["headers"], "x-goog-meta-category": "TOP"}
    assert _http(answer["url"], "PUT", data, picked_other)[0] == 403
    with DevWeb(topo.functions, topo.public_gcs_url) as web:
        through_page = web.url + "/gcs" + answer["url"][len(topo.public_gcs_url):]
        assert _http(through_page, "PUT", data, answer["headers"])[0] == 200
    blob = _client(topo, "admin").bucket(topo.buckets["uploads"]).get_blob(answer["objectKey"])
    assert blob is not None and blob.size == len(data)


def test_a_put_outside_the_signed_size_range_is_refused_and_nothing_stored(topo):
    """upload_url signs `x-goog-content-length-range: 0,<CLOSET_MAX_UPLOAD_BYTES>`: the storage front
    refuses a body one byte larger with GCS's 400 and stores nothing, as GCS does; the limit itself
    passes (and ingest then refuses the bytes, which are no photo)."""
    body = {"userId": "strict", "clothId": "size", "fileName": "p.jpg", "contentType": "image/jpeg"}
    status, raw = _http(topo.functions["upload_url"], "POST", json.dumps(body).encode(),
                        {"Content-Type": "application/json", "Authorization": f"Bearer {topo.upload_url_secret}"})
    assert status == 200, raw
    answer = json.loads(raw)
    low, high = map(int, answer["headers"]["x-goog-content-length-range"].split(","))
    assert (low, high) == (0, 25_000_000)  # CLOSET_MAX_UPLOAD_BYTES
    status, refused = _http(answer["url"], "PUT", b"x" * (high + 1), answer["headers"])
    assert status == 400 and b"<Code>EntityTooLarge</Code>" in refused, refused
    uploads = _client(topo, "admin").bucket(topo.buckets["uploads"])
    assert uploads.get_blob(answer["objectKey"]) is None
    assert _http(answer["url"], "PUT", b"x" * high, answer["headers"])[0] == 200
    assert uploads.get_blob(answer["objectKey"]).size == high
