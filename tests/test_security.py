"""Security properties, checked end to end where they can be.

- The webhook: what the notifier actually sends verifies, and a wrong secret, a changed body or a
  replay outside the window is rejected (sign/verify alone: tests/test_units.py).
- Object names: traversal and odd names are refused by the upload-path parser and by both blob
  stores; a signed upload URL is cryptographically bound to the exact object key under the user's
  prefix, the content type, the size range, the method and the 15-minute expiry.
- Provider and webhook URLs come from configuration only: URLs planted in upload metadata or in a
  message are never contacted.
- Secrets (remove.bg and Gemini keys, webhook and upload-URL secrets), all used for real against
  local fakes, never appear in any log record, stdout/stderr, message, stored object or result.
  (Every log of the emulator topology: tests/test_reliability.py::test_no_secret_in_any_log_or_result.)
- Dependencies: every function's requirements are pinned (==) to what constraints.txt says.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import logging
import re
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from closet_pipeline.adapters.local_folder import LocalFolderBlobStore
from closet_pipeline.adapters.memory import MemoryBlobStore
from closet_pipeline.dev.keys import generate_service_account_info
from closet_pipeline.local_run import LocalPipeline
from shared.adapters.blobstore.gcs import GcsBlobStore
from shared.config import get_settings
from shared.documents import ResultDocument
from shared.errors import InvalidObjectPath
from shared.http import common, upload_url
from shared.layout import job_id_for, parse_upload_key, upload_key
from shared.messages import Job, JobRequest
from shared.runtime.events import job_request_from_notification
from shared.runtime.logs import CloudLoggingFormatter
from shared.runtime.webhook import HEADER, WebhookSender, verify
from tests.conftest import configure
from tests.fakes.gemini import FakeGemini
from tests.fakes.http import FakeHttpServer, Reply
from tests.fakes.removebg import FakeRemoveBg

REPO = Path(__file__).resolve().parent.parent
TSHIRT = "0702f1cb-0096-491e-9267-ee4f3c331fe6.jpg"


# == the webhook, receiver side ===================================================================
def test_webhook_as_received_verifies_and_forgeries_do_not():
    secret = "whsec-e2e-5a1c"
    with FakeHttpServer() as receiver:
        receiver.enqueue(Reply(204))
        document = ResultDocument(job_id="j1", cloth_id="c1", user_id="u1", success=False, error_code="EMPTY_FILE",
                                  error_message="The uploaded file is empty.")
        assert WebhookSender(receiver.url + "/hook", secret).send(document.to_json())
    (request,) = receiver.requests
    body, header = request.body, request.headers[HEADER.lower()]
    assert re.fullmatch(r"t=\d{10},v1=[0-9a-f]{64}", header)
    assert json.loads(body)["jobId"] == "j1" and request.headers["content-type"] == "application/json"
    sent_at = int(header.split(",")[0][2:])
    assert verify(secret, body, header, now=sent_at + 5)
    assert not verify("another-secret", body, header, now=sent_at + 5)  # wrong signature
    changed = json.dumps({**json.loads(body), "success": True}, indent=2).encode()
    assert changed != body and not verify(secret, changed, header, now=sent_at + 5)  # a changed body
    assert not verify(secret, body, header, now=sent_at + 301)  # replayed after the 5-minute window
    assert not verify(secret, body, header, now=sent_at - 301)  # or from the future
    forged_time = header.replace(f"t={sent_at}", f"t={sent_at + 600}")  # a fresh timestamp on an old signature
    assert not verify(secret, body, forged_time, now=sent_at + 600)
    assert not verify(secret, body, "", now=sent_at) and not verify(secret, body, "v1=" + "0" * 64, now=sent_at)


# == object names =================================================================================
HOSTILE_KEYS = [
    "uploads/u1/../u2/a.jpg", "uploads/../uploads/u1/c1/a.jpg", "uploads/u1/c1/..", "uploads/u1/c1/.",
    "uploads/u1/c1/a/b.jpg", "uploads/u1/c1/", "uploads//c1/a.jpg", "/uploads/u1/c1/a.jpg", "uploads/u1/c1/a.jpg/",
    "uploads/u1\x00/c1/a.jpg", "uploads/u1/c1/a\x00.jpg", "uploads/u1/c1/a\n.jpg", "uploads/%2e%2e/c1/a.jpg",
    "uploads/u1/c1/" + "a" * 201, "uploads/ü/c1/a.jpg", "uploads/u1/c1", "work/u1/c1/a.jpg", "UPLOADS/u1/c1/a.jpg",
    "uploads/u1/c%2F1/a.jpg", "uploads/" + "u" * 65 + "/c1/a.jpg",
]


@pytest.mark.parametrize("key", HOSTILE_KEYS + [
    pytest.param("uploads/u1\n/c1/a.jpg", id="user id with a trailing newline"),
    pytest.param("uploads/u1/c1/a.jpg\n", id="file name with a trailing newline"),
], ids=[repr(k)[:40] for k in HOSTILE_KEYS] + [None, None])
def test_hostile_upload_paths_are_refused(key):
    with pytest.raises(InvalidObjectPath):
        parse_upload_key(key)
    with pytest.raises(InvalidObjectPath):  # a notification for it starts no job
        job_request_from_notification({"eventType": "OBJECT_FINALIZE", "objectId": key, "objectGeneration": "1"})


def test_upload_key_parts_cannot_move_the_upload_to_another_prefix():
    for user, cloth, name in [("7/../8", "c", "a.jpg"), ("..", "c", "a.jpg"), ("7", "../8", "a.jpg"),
                              ("7", "c", "../../8/c/a.jpg"), ("7", "c", ".."), ("7", "c", "a/b.jpg")]:
        with pytest.raises(InvalidObjectPath):
            upload_key(user, cloth, name)
    # What a file name may contain stays inside the name: no new path level, nothing outside the prefix.
    key = upload_key("7", "c", "..\\..\\x.jpg?a=b#c")
    assert key.split("/")[:3] == ["uploads", "7", "c"] and len(key.split("/")) == 4


@pytest.mark.parametrize("key", ["../outside.txt", "work/../../outside.txt", "uploads/../../../etc/passwd",
                                 "work/j/../../../outside", "", "work/j/x.meta.json"])
def test_local_folder_store_refuses_keys_outside_its_root(tmp_path, key):
    store = LocalFolderBlobStore(tmp_path / "root")
    with pytest.raises(InvalidObjectPath):
        store.write(key, b"x", content_type="text/plain")
    with pytest.raises(InvalidObjectPath):
        store.read(key)
    assert not (tmp_path / "outside.txt").exists() and not (tmp_path / "outside").exists()


@pytest.mark.parametrize("key", ["results/u/c/j/../../../../uploads/u2/c/a.jpg", "../uploads/u/c/a.jpg",
                                 "secrets/x", "uploads/u/c/../../u2/c/a.jpg", "/uploads/u/c/a.jpg"])
def test_gcs_store_refuses_traversal_and_unknown_areas(key):
    class NoClient:
        def bucket(self, name):  # pragma: no cover - reaching it is the failure
            raise AssertionError(f"bucket {name} was reached for {key!r}")

    store = GcsBlobStore(NoClient(), {"uploads": "b-up", "work": "b-work", "results": "b-res", "cache": "b-cache"})
    with pytest.raises(InvalidObjectPath):
        store.read(key)
    with pytest.raises(InvalidObjectPath):
        store.write(key, b"x", content_type="text/plain")


# == signed upload URLs ============================================================================
@pytest.fixture(scope="module")
def signer():
    from google.cloud import storage
    from google.oauth2 import service_account

    info = generate_service_account_info("closet-test")
    client = storage.Client(project="closet-test",
                            credentials=service_account.Credentials.from_service_account_info(info),
                            client_options={"api_endpoint": "http://127.0.0.1:4443"})
    public_key = serialization.load_pem_private_key(info["private_key"].encode(), password=None).public_key()
    return client, public_key, info["client_email"]


def v4_signature_valid(public_key, method: str, url: str, headers: dict[str, str]) -> bool:
    """What GCS checks for a V4 signed URL (GOOG4-RSA-SHA256), written from the specification:
    the canonical request (method, path, sorted query without the signature, the signed headers'
    values as the client sends them) must be what the service account's key signed."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    params = dict(query)
    signature = bytes.fromhex(params.pop("X-Goog-Signature", ""))
    sent = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
    sent.setdefault("host", parts.netloc)
    signed = params.get("X-Goog-SignedHeaders", "").split(";")
    if any(name not in sent for name in signed):
        return False  # the client must send every signed header
    canonical_query = "&".join(sorted(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in params.items()))
    canonical_headers = "".join(f"{name}:{sent[name]}\n" for name in signed)
    canonical_request = "\n".join([method, parts.path, canonical_query, canonical_headers, ";".join(signed),
                                   "UNSIGNED-PAYLOAD"])
    scope = params["X-Goog-Credential"].split("/", 1)[1]
    string_to_sign = "\n".join(["GOOG4-RSA-SHA256", params["X-Goog-Date"], scope,
                                hashlib.sha256(canonical_request.encode()).hexdigest()])
    try:
        public_key.verify(signature, string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
    except Exception:
        return False
    return True


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = [(k, changes.get(k, v)) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query="&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in query)))


def test_signed_upload_url_binds_key_type_size_method_and_expiry(signer):
    client, public_key, email = signer
    request = upload_url.parse_request({"userId": "7", "clothId": "c-1", "fileName": "shirt.heic",
                                         "contentType": "image/heic"})
    before = datetime.datetime.now(datetime.timezone.utc)
    answer = upload_url.signed_upload(client, "closet-uploads", request, 25_000_000)
    url, headers = answer["url"], answer["headers"]
    assert answer["objectKey"] == "uploads/7/c-1/shirt.heic"  # under this user's prefix, nowhere else
    assert unquote(urlsplit(url).path) == "/closet-uploads/uploads/7/c-1/shirt.heic"
    params = dict(parse_qsl(urlsplit(url).query))
    assert params["X-Goog-Credential"].startswith(email + "/")
    assert set(params["X-Goog-SignedHeaders"].split(";")) == {"content-type", "host", "x-goog-content-length-range"}
    signed_at = datetime.datetime.strptime(params["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    assert abs((signed_at - before).total_seconds()) < 5 and params["X-Goog-Expires"] == "900"
    expires = datetime.datetime.fromisoformat(answer["expiresAt"].replace("Z", "+00:00"))
    assert abs((expires - (signed_at + datetime.timedelta(seconds=900))).total_seconds()) < 5

    assert v4_signature_valid(public_key, "PUT", url, headers)  # exactly as issued: valid
    other_user = url.replace("/uploads/7/c-1/", "/uploads/8/c-1/")
    tampered = {
        "another user's prefix": ("PUT", other_user, headers),
        "another object name": ("PUT", url.replace("shirt.heic", "shirt.jpg"), headers),
        "another content type": ("PUT", url, {**headers, "Content-Type": "text/html"}),
        "a larger size range": ("PUT", url, {**headers, "x-goog-content-length-range": "0,999999999"}),
        "no size range header": ("PUT", url, {"Content-Type": headers["Content-Type"]}),
        "a longer expiry": ("PUT", _with_query(url, **{"X-Goog-Expires": "604800"}), headers),
        "a later start": ("PUT", _with_query(url, **{"X-Goog-Date": "20991231T000000Z"}), headers),
        "another method": ("GET", url, headers),
        "another bucket": ("PUT", url.replace("/closet-uploads/", "/closet-results/"), headers),
    }
    for name, (method, changed_url, changed_headers) in tampered.items():
        assert not v4_signature_valid(public_key, method, changed_url, changed_headers), name


def test_file_name_cannot_inject_into_the_signed_url(signer):
    client, public_key, _ = signer
    name = "x.jpg?X-Goog-Expires=604800&X-Goog-SignedHeaders=host#frag"
    request = upload_url.parse_request({"userId": "7", "clothId": "c", "fileName": name, "contentType": "image/jpeg"})
    answer = upload_url.signed_upload(client, "closet-uploads", request, 1000)
    parts = urlsplit(answer["url"])
    assert unquote(parts.path) == f"/closet-uploads/uploads/7/c/{name}" and parts.fragment == ""
    params = dict(parse_qsl(parts.query))
    assert params["X-Goog-Expires"] == "900" and "content-type" in params["X-Goog-SignedHeaders"]
    assert v4_signature_valid(public_key, "PUT", answer["url"], answer["headers"])


def test_upload_url_refuses_an_id_with_a_trailing_newline(monkeypatch):
    with pytest.raises(common.HttpError) as refused:
        upload_url.parse_request({"userId": "7\n", "clothId": "c", "fileName": "a.jpg", "contentType": "image/jpeg"})
    assert refused.value.status == 400


def test_upload_url_requests_for_paths_outside_the_users_prefix_are_400(monkeypatch, signer):
    client, _, _ = signer
    monkeypatch.setenv(common.SECRET_ENV, "up-secret")
    get_settings.cache_clear()
    settings = SimpleNamespace(project_id="closet-test", uploads_bucket="closet-uploads", max_upload_bytes=1000)
    try:
        for change in ({"userId": "7/../8"}, {"userId": ".."}, {"clothId": "../8"}, {"fileName": "../8/c/a.jpg"},
                       {"fileName": ".."}, {"fileName": "a\x00.jpg"}, {"userId": ["7"]}, {"clothId": "c\r"}):
            body = {"userId": "7", "clothId": "c", "fileName": "a.jpg", "contentType": "image/jpeg", **change}
            request = SimpleNamespace(method="POST", headers={"Authorization": "Bearer up-secret"},
                                      get_json=lambda silent=True, b=body: b)
            answer, status, _ = upload_url.handle_http(request, client, settings)
            assert status == 400 and "url" not in answer, change
    finally:
        get_settings.cache_clear()


# == URLs only from configuration =================================================================
def test_urls_in_upload_metadata_or_messages_are_never_contacted(settings, photo_bytes):
    """A trap server's URL planted everywhere a message or an upload could carry one: the pipeline
    talks only to the configured provider and the configured webhook."""
    with FakeHttpServer(lambda request: Reply(200, b"{}", "application/json")) as trap, \
            FakeRemoveBg(api_key="rb-key") as removebg, FakeHttpServer(lambda request: Reply(204)) as webhook:
        bait = trap.url + "/steal"
        configured = configure(settings, **{"background_providers": ("removebg",), "removebg_api_key": "rb-key",
                                            "removebg_url": removebg.url, "expand_policy": "never",
                                            "cache_enabled": False})
        pipeline = LocalPipeline(configured, MemoryBlobStore(), webhook=WebhookSender(webhook.url + "/hook", "wh").send)
        try:
            # 1. An upload whose metadata names URLs (x-goog-meta-* set by whoever uploads).
            key = upload_key("u1", "c1", "shirt.jpg")
            metadata = {name: bait for name in ("webhook-url", "webhookUrl", "callback", "removebg-url",
                                                "CLOSET_WEBHOOK_URL", "CLOSET_REMOVEBG_URL", "url")}
            generation = pipeline.store.write(key, photo_bytes(TSHIRT), content_type="image/jpeg",
                                              metadata={**metadata, "category": "top"})
            job = Job(job_id=job_id_for(key, generation), cloth_id="c1", user_id="u1", upload=key)
            pipeline.bus.publish(pipeline.topology.first.topic, JobRequest(job=job).to_json())
            # 2. Messages carrying URL fields, at the top level and inside the job.
            refused = Job(job_id="refused1", cloth_id="c2", user_id="u1", upload="uploads/u1/c2/a.jpg")
            message = json.loads(JobRequest(job=refused).to_json())
            pipeline.bus.publish(pipeline.topology.first.topic,
                                 json.dumps({**message, "webhookUrl": bait, "removebgUrl": bait}).encode())
            with_job_url = {**message, "job": {**message["job"], "jobId": "refused2", "callbackUrl": bait}}
            pipeline.bus.publish(pipeline.topology.stage("remove_background").topic, json.dumps(
                {**with_job_url, "workingImage": bait, "cacheKey": "0" * 32, "width": 10, "height": 10}).encode())
            # 3. A notification with URL attributes only ever yields the job's own fields.
            notified = job_request_from_notification({"eventType": "OBJECT_FINALIZE", "objectId": key,
                                                      "objectGeneration": "9", "webhookUrl": bait, "notify": bait})
            assert bait.encode() not in notified.to_json()
            pipeline.bus.run_until_idle()
        finally:
            pipeline.close()
        results = {doc.job_id: doc for doc in (ResultDocument.model_validate_json(data) for topic, data, _
                                               in pipeline.bus.published if topic == pipeline.topology.results_topic)}
        assert results[job.job_id].success and results[job.job_id].suggested_category.value == "TOP"
        assert results["refused1"].error_code == "INVALID_MESSAGE"
        assert "refused2" not in results  # its job itself is unreadable: dropped and logged
        assert trap.requests == []
        assert len(removebg.requests) == 1
        assert sorted(json.loads(r.body)["jobId"] for r in webhook.requests) == sorted([job.job_id, "refused1"])
        assert all(r.path == "/hook" for r in webhook.requests)


# == secrets never leak =============================================================================
SECRETS = {
    "CLOSET_REMOVEBG_API_KEY": "rbkey-sec-3f9a1c77e0b2",
    "CLOSET_GEMINI_API_KEY": "gmkey-sec-a84d20c6f1e9",
    "CLOSET_WEBHOOK_SECRET": "whsec-sec-5b7e9d13c2a4",
    "CLOSET_UPLOAD_URL_SECRET": "upsec-sec-c0e6f2a9b8d1",
}


def test_secrets_never_appear_in_logs_messages_objects_or_results(monkeypatch, caplog, capfd, photo_bytes, signer):
    caplog.set_level(logging.DEBUG)
    formatted = io.StringIO()
    json_handler = logging.StreamHandler(formatted)  # the functions' own format (shared/runtime/logs.py)
    json_handler.setFormatter(CloudLoggingFormatter())
    json_handler.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(json_handler)
    with FakeRemoveBg(api_key=SECRETS["CLOSET_REMOVEBG_API_KEY"]) as removebg, \
            FakeGemini(api_key=SECRETS["CLOSET_GEMINI_API_KEY"]) as gemini, \
            FakeHttpServer(lambda request: Reply(204)) as webhook:
        webhook.enqueue(Reply(500))  # one failure, logged, on the way
        for name, value in {**SECRETS, "CLOSET_BACKGROUND_PROVIDERS": "removebg", "CLOSET_REMOVEBG_URL": removebg.url,
                            "CLOSET_GEMINI_BASE_URL": gemini.url, "CLOSET_EXPAND_POLICY": "always",
                            "CLOSET_CACHE_ENABLED": "false", "CLOSET_WEBHOOK_URL": webhook.url + "/hook"}.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        try:
            settings = get_settings()
            removebg.fail_next(503)  # a provider failure, logged and retried
            gemini.fail_next("server_error", "server_error")  # generation fails: logged, crop kept
            pipeline = LocalPipeline(settings, MemoryBlobStore(), webhook=WebhookSender.from_settings(settings).send)
            try:
                good = pipeline.process_bytes(photo_bytes(TSHIRT), "shirt.jpg", user_id="u1", cloth_id="c1")
                bad = pipeline.process_bytes(b"not an image at all", "x.jpg", user_id="u1", cloth_id="c2")
                expanded = pipeline.process_bytes(photo_bytes(TSHIRT), "again.jpg", user_id="u1", cloth_id="c3")
            finally:
                pipeline.close()
            client, _, _ = signer
            calls = []
            for token in (SECRETS["CLOSET_UPLOAD_URL_SECRET"], "wrong-token", None):
                request = SimpleNamespace(
                    method="POST", headers={"Authorization": f"Bearer {token}"} if token else {},
                    get_json=lambda silent=True: {"userId": "u1", "clothId": "c4", "fileName": "a.jpg",
                                                  "contentType": "image/jpeg"})
                calls.append(upload_url.handle_http(request, client, settings))
        finally:
            get_settings.cache_clear()
            logging.getLogger().removeHandler(json_handler)

    # The secrets were really used.
    assert good.success and expanded.success and bad.error_code == "UNSUPPORTED_FORMAT"
    assert {r.headers["x-api-key"] for r in removebg.requests} == {SECRETS["CLOSET_REMOVEBG_API_KEY"]}
    assert len(removebg.requests) >= 3  # the 503, its retry, the second photo
    assert gemini.calls and {c.api_key for c in gemini.calls} == {SECRETS["CLOSET_GEMINI_API_KEY"]}
    assert any(item.expanded for item in expanded.all_expanded_items) or any(
        "kept the crop" in (item.note or "") for item in good.all_expanded_items)
    hook_calls = list(webhook.requests)
    assert len(hook_calls) == 4 and all(verify(SECRETS["CLOSET_WEBHOOK_SECRET"], r.body, r.headers[HEADER.lower()])
                                        for r in hook_calls)
    assert [status for _, status, _ in calls] == [200, 401, 401]
    assert "webhook answered HTTP 500" in caplog.text and "background provider removebg failed" in caplog.text

    out, err = capfd.readouterr()
    places = {
        "log records": caplog.text,
        "log records as the functions write them": formatted.getvalue(),
        "stdout": out, "stderr": err,
        "result documents": "\n".join(d.model_dump_json() for d in (good, bad, expanded)),
        "messages on every topic": "\n".join(data.decode(errors="replace") for _, data, _ in pipeline.bus.published),
        "message attributes": json.dumps([attrs for _, _, attrs in pipeline.bus.published]),
        "stored objects": "\n".join(pipeline.store.read(k).data.decode("latin-1") + json.dumps(pipeline.store.stat(k).metadata)
                                    for k in pipeline.store.list("")),
        "upload_url answers": json.dumps([body for body, _, _ in calls]),
        "settings as printed": repr(settings) + str(settings) + settings.model_dump_json(),
    }
    for name, secret in SECRETS.items():
        for place, text in places.items():
            assert secret not in text, f"{name} appears in {place}"


# == dependencies ====================================================================================
def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9,._-]+\])?==([A-Za-z0-9.+!_-]+)", line)
        assert match, f"{path.relative_to(REPO)}: {line!r} is not pinned with =="
        pins[_normalise(match.group(1))] = match.group(3)
    return pins


def test_function_requirements_are_pinned_to_the_constraints():
    constraints = _pins(REPO / "constraints.txt")
    files = sorted(REPO.glob("functions/*/requirements.txt"))
    assert len(files) == len(list(REPO.glob("functions/*/main.py"))) > 0
    for path in files:
        pins = _pins(path)
        assert pins, f"{path.relative_to(REPO)} is empty"
        for name, version in pins.items():
            assert name in constraints, f"{path.relative_to(REPO)}: {name} is not in constraints.txt"
            assert constraints[name] == version, f"{path.relative_to(REPO)}: {name}=={version}, constraints say {constraints[name]}"


def test_installed_packages_match_the_constraints():
    """What the tests run with is what the functions deploy with."""
    from importlib.metadata import PackageNotFoundError, version

    mismatched = {}
    for name, pinned in _pins(REPO / "constraints.txt").items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue  # platform-specific or optional
        if installed != pinned:
            mismatched[name] = (installed, pinned)
    assert mismatched == {}
