"""A tiny threaded HTTP server for faking remote APIs in tests, and the base of the fakes.

Tests script it with a handler function (request -> Reply) and/or a queue of canned replies that
are served first; every request is recorded. It binds 127.0.0.1 on a free port, so tests never
reach the internet, and it stops when the `with` block ends. A fake of one API (FakeService) is
such a server answering through its own `_handle`, with a script of failures for its next requests.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # longer than the client's timeout fakes a hung server


Handler = Callable[[Request], Reply]

# Failure modes several fakes understand besides an HTTP status: a hung server, a body that is no
# image (or no JSON).
TIMEOUT = "timeout"
GARBAGE = "garbage"


def json_reply(status: int, payload: object) -> Reply:
    return Reply(status, json.dumps(payload).encode(), "application/json")


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def parse_multipart(request: Request) -> dict[str, Part]:
    """The form fields of a multipart/form-data body, by name (stdlib has no parser for it since 3.13)."""
    content_type = request.headers.get("content-type", "")
    if "multipart/form-data" not in content_type or "boundary=" not in content_type:
        raise ValueError(f"not a multipart body: {content_type!r}")
    boundary = content_type.split("boundary=", 1)[1].split(";")[0].strip().strip('"').encode()
    parts: dict[str, Part] = {}
    for chunk in request.body.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode("utf-8").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        params = {}
        for item in headers.get("content-disposition", "").split(";")[1:]:
            key, _, value = item.strip().partition("=")
            params[key] = value.strip('"')
        name = params["name"]
        parts[name] = Part(name, params.get("filename"), headers.get("content-type"), data.removesuffix(b"\r\n"))
    return parts


class FakeHttpServer:
    """Serves scripted replies on 127.0.0.1:<free port> from a daemon thread."""

    def __init__(self, handler: Handler | None = None) -> None:
        self.handler = handler
        self.replies: deque[Reply] = deque()
        self.requests: list[Request] = []
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits for the loop to notice, 0.5 s by default.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def enqueue(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def __enter__(self) -> "FakeHttpServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()  # wakes delayed replies so they give up instead of writing late
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _respond(self, request: Request) -> Reply:
        self.requests.append(request)
        if self.replies:
            return self.replies.popleft()
        if self.handler is not None:
            return self.handler(request)
        return Reply(404, b'{"detail": "Not Found"}', "application/json")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real APIs and httpx's pool expect

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                headers = {key.lower(): value for key, value in self.headers.items()}
                request = Request(self.command, parts.path, parse_qs(parts.query), headers, body)
                try:
                    reply = fake._respond(request)
                except Exception as exc:  # a broken fake should fail the test loudly, not hang it
                    reply = Reply(599, f"fake server error: {exc!r}".encode(), "text/plain")
                if reply.delay_s and fake._stopping.wait(reply.delay_s):
                    self.close_connection = True
                    return
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(reply.body)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (timeout): nothing to do

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
                pass

        return _Handler


class FakeService(FakeHttpServer):
    """A fake of one remote API: answers in `_handle`; `fail_next` scripts failures for the next
    requests (the fake takes them with `next_failure`), checked against the modes it understands."""

    modes: tuple[str, ...] = ()  # the named failure modes this fake understands
    statuses = False  # whether an HTTP status (503, 429, ...) is a mode too
    path = ""  # what `url` adds to the server's address: where a client is pointed

    def __init__(self) -> None:
        super().__init__(self._handle)
        self.failures: deque[int | str] = deque()

    @property
    def url(self) -> str:
        return super().url + self.path

    def fail_next(self, *modes: int | str) -> None:
        unknown = [m for m in modes if not (isinstance(m, int) and self.statuses) and m not in self.modes]
        assert not unknown, f"{type(self).__name__} does not understand {unknown}"
        self.failures.extend(modes)

    def next_failure(self) -> int | str | None:
        return self.failures.popleft() if self.failures else None

    def _handle(self, request: Request) -> Reply:
        raise NotImplementedError
