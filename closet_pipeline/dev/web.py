"""The demo web page on the local topology: a tiny static server for clients/web/ plus a same-origin
proxy to the functions and the emulated bucket, so the page needs no CORS anywhere.

    /                    -> /demo/
    /demo/, /closet-upload.js, ...   clients/web/ (static, no directory listings, nothing outside it)
    /config.json         what the demo page needs: endpoints, bearer token, user id (local only!)
    POST /api/upload_url -> the upload_url function; the signed URL's origin is rewritten to /gcs/
    GET  /api/status     -> the status function
    /gcs/...             -> fake-gcs-server (the signed PUT, and anything else)

In the cloud the page's origin differs from the functions' and the bucket's: the status function
answers CORS itself, upload_url answers it too (CLOSET_CORS_ORIGINS), and the uploads bucket gets CORS
from Terraform's `app_origins` (terraform/README.md).

Started by `closet-pipeline dev` (LocalTopology.start_web) and by tests/test_web.py. Runs on a
daemon thread in the calling process and binds 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import logging
import mimetypes
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from closet_pipeline import REPO_ROOT
from shared import formats
from shared.documents import STEP_PERCENT, ProgressStep
from shared.layout import METADATA_HEADER_PREFIX

log = logging.getLogger("closet.dev.web")

WEB_ROOT = REPO_ROOT / "clients" / "web"
MAX_BODY = 64 * 1024 * 1024  # more than CLOSET_MAX_UPLOAD_BYTES: the bucket, not the proxy, refuses
FORWARDED_REQUEST_HEADERS = ("authorization", "content-type", "x-goog-content-length-range", "range")
# Signed headers of an upload URL (the user's pick, x-goog-meta-category): the strict front checks
# their values against the signature, so they must reach it unchanged.
FORWARDED_HEADER_PREFIXES = (METADATA_HEADER_PREFIX,)
TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".html": "text/html", ".css": "text/css",
         ".json": "application/json", ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon"}


def step_percentages() -> dict[str, int | str]:
    """The demo page's step list at the app's percentages, from the one table (shared/documents.py):
    queued is 0 and done 100 (the status function's answer); expanding spans analysed to expanded."""
    percent = {step.value: value for step, value in STEP_PERCENT.items()}
    return {"QUEUED": 0, **percent, "EXPANDING": f"{STEP_PERCENT[ProgressStep.ANALYZED]}\u2013"
            f"{STEP_PERCENT[ProgressStep.EXPANDED]}", "COMPLETED": 100}


class DevWeb:
    def __init__(self, functions: dict[str, str], gcs_url: str | None, *, auth_token: str | None = None,
                 user_id: str = "demo", root: Path = WEB_ROOT, host: str = "127.0.0.1", port: int = 0,
                 timeout_s: float = 120.0) -> None:
        self.functions = dict(functions)
        self.gcs_url = gcs_url.rstrip("/") if gcs_url else None
        self.auth_token = auth_token
        self.user_id = user_id
        self.root = root.resolve()
        self.timeout_s = timeout_s
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "DevWeb":
        self._thread = threading.Thread(target=self._server.serve_forever, name="closet-dev-web", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(10)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> "DevWeb":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def config(self) -> dict:
        return {"uploadUrlEndpoint": "/api/upload_url", "statusEndpoint": "/api/status",
                "authToken": self.auth_token, "userId": self.user_id,
                "directStatusEndpoint": self.functions.get("status"),
                "stepPercent": step_percentages(), "formats": formats.spoken()}


def _handler(web: DevWeb) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as separate writes: with Nagle on, each response waits for the
        # client's delayed ACK (40 ms), a cost no cloud endpoint adds.
        disable_nagle_algorithm = True
        server_version = "closet-dev-web"

        def log_message(self, fmt, *args):  # quiet: one debug line per request
            log.debug("%s " + fmt, self.address_string(), *args)

        def do_GET(self):  # noqa: N802
            self._route()

        def do_HEAD(self):  # noqa: N802
            self._route()

        def do_POST(self):  # noqa: N802
            self._route()

        def do_PUT(self):  # noqa: N802
            self._route()

        def do_OPTIONS(self):  # noqa: N802
            self._route()

        # -- routing ------------------------------------------------------------------------
        def _route(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            try:
                if path == "/":
                    self._send(302, b"", {"Location": "/demo/"})
                elif path == "/config.json" and self.command in ("GET", "HEAD"):
                    self._send(200, json.dumps(web.config()).encode(), {"Content-Type": "application/json",
                                                                        "Cache-Control": "no-store"})
                elif path == "/api/upload_url":
                    self._proxy_function("upload_url", rewrite_upload=True)
                elif path == "/api/status":
                    self._proxy_function("status")
                elif path.startswith("/gcs/"):
                    self._proxy(web.gcs_url, self.path[len("/gcs"):])
                elif self.command in ("GET", "HEAD"):
                    self._static(path)
                else:
                    self._send(405, b"method not allowed\n", {"Content-Type": "text/plain"})
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _body(self) -> bytes | None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise ValueError("body too large")
            return self.rfile.read(length) if length else None

        def _proxy_function(self, name: str, rewrite_upload: bool = False) -> None:
            base = web.functions.get(name)
            query = urllib.parse.urlsplit(self.path).query
            self._proxy(base, "/" + (f"?{query}" if query else ""), rewrite_upload=rewrite_upload)

        def _proxy(self, base: str | None, target: str, rewrite_upload: bool = False) -> None:
            try:
                body = self._body()
            except ValueError:
                self._send(413, b"too large\n", {"Content-Type": "text/plain", "Connection": "close"})
                return
            if not base:
                self._send(502, b'{"error": "not running in this topology"}', {"Content-Type": "application/json"})
                return
            upstream = urllib.parse.urlsplit(base)
            headers = {k: v for k, v in self.headers.items() if k.lower() in FORWARDED_REQUEST_HEADERS
                       or k.lower().startswith(FORWARDED_HEADER_PREFIXES)}
            if body is not None:
                headers["Content-Length"] = str(len(body))
            connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=web.timeout_s)
            try:
                connection.request(self.command, target, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                status, content_type = response.status, response.getheader("Content-Type", "application/octet-stream")
            except OSError as exc:
                self._send(502, json.dumps({"error": f"upstream unreachable: {exc}"}).encode(),
                           {"Content-Type": "application/json"})
                return
            finally:
                connection.close()
            if rewrite_upload and status == 200 and web.gcs_url:
                answer = json.loads(data)
                if str(answer.get("url", "")).startswith(web.gcs_url):
                    origin = f"http://{self.headers.get('Host') or web.url.split('//', 1)[1]}"
                    answer["url"] = origin + "/gcs" + answer["url"][len(web.gcs_url):]
                data = json.dumps(answer).encode()
            self._send(status, data, {"Content-Type": content_type, "Cache-Control": "no-store"})

        def _static(self, path: str) -> None:
            relative = urllib.parse.unquote(path).lstrip("/")
            target = (web.root / relative).resolve()
            if target.is_dir():
                if not path.endswith("/"):
                    self._send(301, b"", {"Location": path + "/"})
                    return
                target = target / "index.html"
            if web.root not in target.parents or not target.is_file():
                self._send(404, b"not found\n", {"Content-Type": "text/plain"})
                return
            content_type = (TYPES.get(target.suffix.lower()) or mimetypes.guess_type(target.name)[0]
                            or "application/octet-stream")
            if content_type.startswith("text/") or content_type == "application/json":
                content_type += "; charset=utf-8"
            self._send(200, target.read_bytes(), {"Content-Type": content_type, "Cache-Control": "no-cache"})

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            if headers.get("Connection") == "close":
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    return Handler
