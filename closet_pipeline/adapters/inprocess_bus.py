"""An in-process bus that behaves like Pub/Sub push: handlers run on worker threads, a handler that
raises is retried with exponential backoff from 1 s (the shortest retry policy the local topology and
Terraform set: a retry never comes sooner in the cloud), and after the last attempt the message goes
to the dead-letter topic with its source topic in the attributes."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from shared.adapters.bus.base import Bus

log = logging.getLogger(__name__)
Handler = Callable[[bytes, dict[str, str], int], None]  # data, attributes, delivery attempt


class InProcessBus(Bus):
    def __init__(self, *, workers: int = 4, max_attempts: int = 5, backoff_s: float = 1.0,
                 dead_letter_topic: str | None = None) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bus")
        self._pending: set[Future] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.dead_letter_topic = dead_letter_topic
        self.published: list[tuple[str, bytes, dict[str, str]]] = []

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic].append(handler)

    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> None:
        attributes = dict(attributes or {})
        with self._lock:
            self.published.append((topic, data, attributes))
        for handler in self._handlers.get(topic, []):
            self._submit(self._deliver, topic, handler, data, attributes)

    def _submit(self, fn, *args) -> None:
        with self._lock:
            future = self._pool.submit(fn, *args)
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future) -> None:
        with self._lock:
            self._pending.discard(future)
            self._idle.notify_all()

    def _deliver(self, topic: str, handler: Handler, data: bytes, attributes: dict[str, str]) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                handler(data, attributes, attempt)
                return
            except Exception as exc:  # what a function's HTTP 500 is to Pub/Sub
                log.warning("handler on %s failed (attempt %d/%d): %s", topic, attempt, self.max_attempts, exc)
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
        if self.dead_letter_topic:
            self.publish(self.dead_letter_topic, data,
                         {**attributes, "CloudPubSubDeadLetterSourceTopic": topic,
                          "CloudPubSubDeadLetterSourceDeliveryCount": str(self.max_attempts)})

    def run_until_idle(self, timeout_s: float = 600) -> None:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._pending:
                if not self._idle.wait(timeout=max(0.0, deadline - time.monotonic())):
                    raise TimeoutError("the in-process bus did not drain in time")

    def close(self) -> None:
        self._pool.shutdown(wait=True)
