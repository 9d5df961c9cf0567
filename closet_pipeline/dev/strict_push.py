"""A push front between the Pub/Sub emulator and the functions: adds `deliveryAttempt`.

Real Pub/Sub puts `"deliveryAttempt": N` at the top of a push body when the subscription has a
dead-letter policy; the emulator (0.8.20) never does, so a handler there always sees attempt 1. This
front counts the deliveries of each (subscription, messageId) it forwards and adds the field for the
subscriptions that have a dead-letter policy, as Pub/Sub does. A push endpoint through it is
`http://127.0.0.1:PORT/<function>/<path the function expects>`; the function's answer (or a 502 when
it cannot be reached, e.g. cut off by its timeout) goes back to the emulator, which redelivers on
anything but 2xx.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("closet.dev.strict_push")


class PushFront:
    def __init__(self, functions: dict[str, str], dead_letter_subscriptions: set[str], *,
                 timeouts: dict[str, float] | None = None) -> None:
        self.functions = functions  # name -> base URL
        self.dead_letter_subscriptions = dead_letter_subscriptions  # full subscription paths
        self.timeouts = timeouts or {}
        self.attempts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def listen(self, port: int = 0, host: str = "127.0.0.1") -> int:
        self.server = ThreadingHTTPServer((host, port), _handler(self))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="strict-push", daemon=True).start()
        return self.server.server_address[1]

    def annotate(self, body: bytes) -> bytes:
        """The body with `deliveryAttempt` added where real Pub/Sub would add it."""
        try:
            envelope = json.loads(body)
            subscription = envelope["subscription"]
            message_id = envelope["message"].get("messageId") or envelope["message"]["message_id"]
        except (ValueError, KeyError, TypeError, AttributeError):
            return body
        if subscription not in self.dead_letter_subscriptions:
            return body
        with self._lock:
            self.attempts[(subscription, message_id)] += 1
            envelope["deliveryAttempt"] = self.attempts[(subscription, message_id)]
        return json.dumps(envelope).encode()


def _handler(front: PushFront) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as separate writes: with Nagle on, each response waits for the
        # client's delayed ACK (40 ms), a cost no cloud endpoint adds.
        disable_nagle_algorithm = True

        def log_message(self, fmt, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            name, _, rest = self.path.lstrip("/").partition("/")
            base = front.functions.get(name)
            if base is None:
                return self._send(404, b"no such function")
            body = front.annotate(body)
            upstream = urllib.parse.urlsplit(base)
            timeout = float(front.timeouts.get(name, 600)) + 30
            connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=timeout)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
            try:
                connection.request("POST", "/" + rest, body=body, headers={**headers, "Content-Length": str(len(body))})
                response = connection.getresponse()
                self._send(response.status, response.read())
            except OSError as exc:  # cut off (timeout, crash): Pub/Sub sees a failed delivery
                log.warning("push to %s failed: %s", name, exc)
                self._send(502, f"function {name} unreachable: {exc}".encode())
            finally:
                connection.close()

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
