"""A push front between the Pub/Sub emulator and the functions: Pub/Sub's push policies, as declared.

The emulator (0.8.20) does not push as Pub/Sub does: it never adds `deliveryAttempt`, and its
redelivery backoff is its own (asked for 10-60 s, it redelivers after about 1, 17, 17 and 24 s).
Locally the subscription policies must be the deployed ones (shared/topology.json: the stages'
10-60 s backoff and 10 deliveries, the webhook's own), or a test passes here on retries the cloud
would not make, or fails on retries it would. So the emulator is told to redeliver every second,
and this front, per (subscription, messageId):

- holds a delivery back (answers 503 without forwarding, not counted) until the declared backoff
  after the previous failed delivery has passed: min(maximum, minimum x 2^(failures - 1));
- counts the deliveries it forwards and adds `"deliveryAttempt": N` where the subscription has a
  dead-letter topic, as Pub/Sub does;
- after the declared max_delivery_attempts failed deliveries, publishes the message to the
  subscription's dead-letter topic with the attributes Pub/Sub adds, and acknowledges it;
- refuses a second delivery of a message while one is in flight (not counted).

A push endpoint through it is `http://127.0.0.1:PORT/<function>/<path the function expects>`; the
function's answer (or a 502 when it cannot be reached, e.g. cut off by its timeout or killed) goes
back to the emulator, which redelivers on anything but 2xx.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import threading
import time
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("closet.dev.strict_push")


@dataclass
class Policy:
    function: str
    minimum_backoff_s: float
    maximum_backoff_s: float
    max_delivery_attempts: int
    dead_letter_topic: str | None  # full topic path

    def backoff_s(self, failures: int) -> float:  # as shared.topology.RetryPolicy.backoff_s
        return min(self.maximum_backoff_s, self.minimum_backoff_s * 2 ** max(0, failures - 1))


@dataclass
class Delivery:
    attempts: int = 0  # forwarded to the function
    due: float = 0.0  # time.monotonic() before which a redelivery is held back
    in_flight: bool = False
    done: bool = False  # acknowledged, or dead-lettered


class PushFront:
    def __init__(self, functions: dict[str, str], policies: dict[str, dict] | None = None, *,
                 timeouts: dict[str, float] | None = None, publish=None, clock=time.monotonic) -> None:
        self.functions = functions  # name -> base URL
        self.policies = {path: Policy(p["function"], float(p["minimumBackoffSeconds"]), float(p["maximumBackoffSeconds"]),
                                      int(p["maxDeliveryAttempts"]), p.get("deadLetterTopic"))
                         for path, p in (policies or {}).items()}
        self.timeouts = timeouts or {}
        self.publish = publish  # (topic path, data, attributes) -> None: dead-lettering
        self.clock = clock
        self.deliveries: dict[tuple[str, str], Delivery] = {}
        self.held = 0  # redeliveries held back by the backoff (not counted as deliveries)
        self._lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def listen(self, port: int = 0, host: str = "127.0.0.1") -> int:
        self.server = ThreadingHTTPServer((host, port), _handler(self))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="strict-push", daemon=True).start()
        return self.server.server_address[1]

    def begin(self, envelope: dict) -> tuple[int | None, Delivery | None, Policy | None]:
        """Before forwarding: (status to answer without forwarding, or None), the delivery, its policy."""
        subscription = envelope.get("subscription")
        message = envelope.get("message") or {}
        policy = self.policies.get(subscription)
        if policy is None:
            return None, None, None
        key = (subscription, message.get("messageId") or message.get("message_id") or "")
        with self._lock:
            delivery = self.deliveries.setdefault(key, Delivery())
            if delivery.done:
                return 204, delivery, policy  # the emulator lagging behind an ack or a dead letter
            if delivery.in_flight or self.clock() < delivery.due:
                self.held += 1
                return 503, delivery, policy
            delivery.attempts += 1
            delivery.in_flight = True
        if policy.dead_letter_topic:
            envelope["deliveryAttempt"] = delivery.attempts
        return None, delivery, policy

    def end(self, envelope: dict, delivery: Delivery, policy: Policy, status: int) -> int:
        """After the function answered: the status for the emulator (200 once dead-lettered)."""
        with self._lock:
            delivery.in_flight = False
            if 200 <= status < 300:
                delivery.done = True
                return status
            delivery.due = self.clock() + policy.backoff_s(delivery.attempts)
            dead = policy.dead_letter_topic and delivery.attempts >= policy.max_delivery_attempts
            if dead:
                delivery.done = True
        if dead:
            message = envelope["message"]
            attributes = {**(message.get("attributes") or {}),
                          "CloudPubSubDeadLetterSourceSubscription": envelope["subscription"].rsplit("/", 1)[-1],
                          "CloudPubSubDeadLetterSourceSubscriptionProject": envelope["subscription"].split("/")[1],
                          "CloudPubSubDeadLetterSourceDeliveryCount": str(delivery.attempts),
                          "CloudPubSubDeadLetterSourceTopicPublishTime": message.get("publishTime") or
                          datetime.now(timezone.utc).isoformat()}
            self.publish(policy.dead_letter_topic, base64.b64decode(message.get("data") or b""), attributes)
            log.warning("dead-lettered %s after %d deliveries to %s", message.get("messageId"), delivery.attempts,
                        policy.function)
            return 204
        return status


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
            try:
                envelope = json.loads(body)
            except ValueError:
                envelope = {}
            answer, delivery, policy = front.begin(envelope) if isinstance(envelope, dict) else (None, None, None)
            if answer is not None:
                return self._send(answer, b"held back by the subscription's retry policy" if answer == 503 else b"")
            if delivery is not None:
                body = json.dumps(envelope).encode()
            upstream = urllib.parse.urlsplit(base)
            timeout = float(front.timeouts.get(name, 600)) + 30
            connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=timeout)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
            try:
                connection.request("POST", "/" + rest, body=body, headers={**headers, "Content-Length": str(len(body))})
                response = connection.getresponse()
                status, data = response.status, response.read()
            except OSError as exc:  # cut off (timeout, crash): Pub/Sub sees a failed delivery
                log.warning("push to %s failed: %s", name, exc)
                status, data = 502, f"function {name} unreachable: {exc}".encode()
            finally:
                connection.close()
            if delivery is not None:
                status = front.end(envelope, delivery, policy, status)
            self._send(status, data)

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
