"""clients/java/ with the JDK alone: javac compiles it, and it is fed webhook requests exactly as our
notifier (shared/runtime/webhook.py's WebhookSender) sent them over a socket. It accepts those,
refuses a changed body, a wrong secret, an old timestamp and a replay, and parses the result
documents and progress events recorded from a real run into its records."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from closet_pipeline import contract
from shared.documents import ResultDocument
from shared.runtime.webhook import HEADER, WebhookSender, sign, verify

ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec-java-3f9a61c0"
MAIN = "com.closetconnect.pipeline.VerifyWebhook"


@pytest.fixture(scope="module")
def classes(tmp_path_factory) -> Path:
    javac = shutil.which("javac")
    if javac is None or shutil.which("java") is None:
        pytest.fail("the Java client cannot be checked here: javac/java (JDK 17) not on PATH", pytrace=False)
    out = tmp_path_factory.mktemp("java-classes")
    sources = sorted(str(p) for p in (ROOT / "clients" / "java" / "src").rglob("*.java"))
    built = subprocess.run([javac, "--release", "17", "-Xlint:all", "-Werror", "-d", str(out), *sources],
                           capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    return out


def _capture_one(send) -> bytes:
    """The raw bytes of the one HTTP request `send(url)` makes, as a receiver reads them off the socket."""
    server = socket.create_server(("127.0.0.1", 0))
    raw = bytearray()

    def serve():
        connection, _ = server.accept()
        with connection:
            while b"\r\n\r\n" not in raw:
                raw.extend(connection.recv(65536))
            head = bytes(raw).split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
            length = int(head.split("content-length:", 1)[1].split("\r\n", 1)[0])
            while len(raw) - len(head) - 4 < length:
                raw.extend(connection.recv(65536))
            connection.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert send(f"http://127.0.0.1:{server.getsockname()[1]}/closet-webhook")
    thread.join(10)
    server.close()
    return bytes(raw)


@pytest.fixture(scope="module")
def document() -> bytes:
    """The body the webhook sent in a real run (contract/examples), as the pipeline serialises it: the
    published result with links signed for that delivery (the topic's names files)."""
    recorded = json.loads((contract.examples_dir() / "webhook.request.json").read_text())["body"]
    return ResultDocument.model_validate(recorded).to_json()


@pytest.fixture(scope="module")
def request_bytes(document) -> bytes:
    return _capture_one(lambda url: WebhookSender(url, SECRET).send(document))


def _split(raw: bytes) -> tuple[str, bytes]:
    head, body = raw.split(b"\r\n\r\n", 1)
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(":") for line in head.decode("latin-1").split("\r\n")[1:])}
    return headers[HEADER.lower()], body


def _java(classes: Path, *args: str, stdin: bytes | None = None, secret: str = SECRET):
    env = {**os.environ, "CLOSET_WEBHOOK_SECRET": secret}
    done = subprocess.run(["java", "-cp", str(classes), MAIN, *args], input=stdin, capture_output=True,
                          env=env, timeout=60)
    return done.returncode, done.stdout.decode().splitlines(), done.stderr.decode()


def test_accepts_a_request_our_notifier_signed(classes, request_bytes, document):
    header, body = _split(request_bytes)
    assert body == document and verify(SECRET, body, header)  # the Python receiver agrees
    code, lines, err = _java(classes, stdin=request_bytes)
    recorded = json.loads(document)
    assert code == 0, err
    assert len(lines) == 1
    assert lines[0].startswith(f"accepted ResultDocument[schemaVersion=1, jobId={recorded['jobId']},")
    item = recorded["allSegmentedItems"][0]
    assert f"SegmentedItem[label={item['label']}, category={item['category']}, confidence={item['confidence']}, " \
           f"areaPixels={item['areaPixels']}, bbox={item['bbox']}" in lines[0]


def test_refuses_a_changed_body_a_wrong_secret_an_old_timestamp_and_a_replay(classes, request_bytes, tmp_path):
    header, body = _split(request_bytes)
    changed = body.replace(b'"success": true', b'"success": null')
    old = sign(SECRET, body, timestamp=int(time.time()) - 600)  # really signed, ten minutes ago
    cases = {
        "changed": (request_bytes[: -len(body)] + changed).replace(b"Content-Length: %d" % len(body),
                                                                   b"Content-Length: %d" % len(changed)),
        "old": request_bytes.replace(header.encode(), old.encode()),
        "malformed": request_bytes.replace(header.encode(), b"t=1,v1=abc"),
    }
    files = {}
    for name, raw in {"real": request_bytes, **cases}.items():
        files[name] = tmp_path / f"{name}.http"
        files[name].write_bytes(raw)
    code, lines, _ = _java(classes, *(str(files[n]) for n in ("real", "changed", "old", "malformed", "real")))
    assert code == 1
    assert [line.split(":")[0] for line in lines] == [
        "accepted ResultDocument[schemaVersion=1, jobId=" + json.loads(body)["jobId"] + ", clothId=42, userId=1, "
        "success=true, errorCode=null, errorMessage=null, imageType=SINGLE_ITEM, suggestedCategory=TOP, "
        "segmentationLabel=T-Shirt, areaPixels=" + str(json.loads(body)["areaPixels"]) + ", removedBgImageUrl=http",
        "refused BAD_SIGNATURE", "refused OUTSIDE_WINDOW", "refused MALFORMED", "refused REPLAYED"]
    code, lines, _ = _java(classes, str(files["real"]), secret="whsec-someone-else")
    assert code == 1 and lines[0].startswith("refused BAD_SIGNATURE")


def test_parses_the_documents_of_a_real_run_into_its_records(classes):
    examples = sorted(contract.examples_dir().glob("*.json"))
    for kind, prefix in (("result", "ResultDocument["), ("progress", "ProgressEvent[")):
        files = [p for p in examples if p.name.startswith(kind + ".")]
        code, lines, err = _java(classes, "--parse", kind, *map(str, files))
        assert code == 0 and len(lines) == len(files), err
        for path, line in zip(files, lines):
            recorded = json.loads(path.read_text())
            ids = f"jobId={recorded['jobId']}, clothId={recorded['clothId']}, "
            assert line.startswith(f"{prefix}schemaVersion=1, {ids}")
            if kind == "result":
                code = recorded["errorCode"] or "null"
                assert f"success={str(recorded['success']).lower()}, errorCode={code}," in line
                assert line.count("SegmentedItem[") == len(recorded["allSegmentedItems"])
                assert f"cacheHit={str(recorded['cacheHit']).lower()}" in line
            else:
                assert f"currentStep={recorded['currentStep']}, progressPercentage={recorded['progressPercentage']}, " \
                       f"sequence={recorded['sequence']}," in line
