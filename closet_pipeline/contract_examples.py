"""Records contract/examples/v<N>/ from a real run: the emulator topology (closet_pipeline/dev/topology.py)
with the real functions, fed the repository's photos. Every file is what a function answered, what
was published, or what the webhook receiver was sent, byte for byte parsed as JSON.

The webhook is signed with EXAMPLE_SECRET, so a reader can check the recorded signature (not its age).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from closet_pipeline import REPO_ROOT
from shared.layout import job_id_for

EXAMPLE_SECRET = "whsec-example-not-a-secret"
UPLOAD_SECRET = "example-upload-secret"
TIMEOUT_S = 300


class _Capture:
    """The app's webhook endpoint: records each request's method, headers and body."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append({"method": "POST", "headers": dict(self.headers.items()),
                                       "body": json.loads(body)})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/closet-webhook"


def _call(url: str, method: str = "GET", body: dict | None = None, token: str | None = UPLOAD_SECRET):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _drain(topo, subscription: str) -> list:
    out = []
    while batch := topo.pubsub.pull(subscription, timeout=5, max_messages=100):
        out.extend(json.loads(m.data) for m in batch)
    return out


def record(folder: Path) -> None:
    from closet_pipeline.dev.topology import LocalTopology

    capture = _Capture()
    env = {"CLOSET_WEBHOOK_URL": capture.url, "CLOSET_WEBHOOK_SECRET": EXAMPLE_SECRET,
           "CLOSET_UPLOAD_URL_SECRET": UPLOAD_SECRET, "CLOSET_EXPAND_POLICY": "never"}
    files: dict[str, object] = {}
    with LocalTopology(env) as topo:
        taps = {name: topo.pubsub.add_pull_subscription(topic, f"examples-{name}")
                for name, topic in (("results", topo.results_topic), ("progress", topo.progress_topic))}
        upload, status = topo.functions["upload_url"], topo.functions["status"]
        request = {"userId": "1", "clothId": "42", "fileName": "t-shirt.jpg", "contentType": "image/jpeg",
                   "category": "TOP"}
        files["upload_url.request.json"] = request
        code, answer = _call(upload, "POST", request)
        files["upload_url.200.json"] = answer
        files["upload_url.400.json"] = _call(upload, "POST", {**request, "contentType": "text/plain"})[1]
        files["upload_url.401.json"] = _call(upload, "POST", request, token="wrong")[1]
        files["upload_url.405.json"] = _call(upload, "GET")[1]
        put = urllib.request.Request(answer["url"], data=(REPO_ROOT / "examples" / "t-shirt.jpg").read_bytes(),
                                     headers=answer["headers"], method="PUT")
        urllib.request.urlopen(put, timeout=30).close()
        blob = topo.storage_client().bucket(topo.buckets["uploads"]).get_blob(answer["objectKey"])
        job = job_id_for(blob.name, blob.generation)
        files["status.200.processing.json"] = _call(f"{status}?userId=1&objectKey={answer['objectKey']}")[1]
        done = topo.wait_for_result(job, TIMEOUT_S)
        again = topo.upload_job(REPO_ROOT / "examples" / "t-shirt.jpg", "1", "43", "t-shirt.jpg")  # a cache hit
        broken = topo.upload_job(b"this is not a photo", "1", "44", "notes.jpg")
        for other in (again.job_id, broken.job_id):
            topo.wait_for_result(other, TIMEOUT_S)
        files["status.200.completed.json"] = _call(f"{status}?userId=1&clothId=42&jobId={job}")[1]
        files["status.200.failed.json"] = _call(f"{status}?userId=1&clothId=44&jobId={broken.job_id}")[1]
        files["status.400.json"] = _call(f"{status}?userId=1&clothId=42")[1]
        files["status.401.json"] = _call(f"{status}?userId=1&clothId=42&jobId={job}", token="wrong")[1]
        files["status.404.json"] = _call(f"{status}?userId=2&clothId=42&jobId={job}")[1]
        published = {name: _drain(topo, path) for name, path in taps.items()}
        by_job = {d["jobId"]: d for d in published["results"]}
        files["result.completed.json"] = by_job[done.job_id]
        files["result.cache-hit.json"] = by_job[again.job_id]
        files["result.failed.json"] = by_job[broken.job_id]
        events = sorted((e for e in published["progress"] if e["jobId"] == job), key=lambda e: e["sequence"])
        for event in events:
            files[f"progress.{event['currentStep'].lower().replace('_', '-')}.json"] = event
        hooks = [r for r in capture.requests if r["body"]["jobId"] == job]
        files["webhook.request.json"] = hooks[0]
    capture.server.shutdown()
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.json"):
        old.unlink()
    for name, value in files.items():
        (folder / name).write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
        print(f"recorded {folder.relative_to(REPO_ROOT) / name}")
