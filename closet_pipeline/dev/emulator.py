"""The Pub/Sub emulator (google-cloud-cli's jar) on 127.0.0.1, and this process's clients of it:
topics, subscriptions, publishing, pulling, and watches (pull subscriptions whose messages are kept
in arrival order). Setting PUBSUB_EMULATOR_HOST here points this process's Pub/Sub clients at it."""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from closet_pipeline.dev.processes import Processes, free_port, http_ok
from closet_pipeline.dev.tools import pubsub_jar


@dataclass
class Watch:
    """Messages pulled from one subscription, kept in arrival order (duplicates included)."""

    subscription: str
    items: list = field(default_factory=list)
    attributes: list = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    future: object = None

    def add(self, item, attributes: dict[str, str]) -> None:
        with self.cond:
            self.items.append(item)
            self.attributes.append(attributes)
            self.cond.notify_all()

    def wait(self, predicate: Callable, timeout: float):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for item in self.items:
                    if predicate(item):
                        return item
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def snapshot(self) -> list:
        with self.cond:
            return list(self.items)


class PubSubEmulator:
    def __init__(self, processes: Processes, project: str) -> None:
        self.processes = processes
        self.project = project
        self.port = 0
        self.publisher = self.subscriber = None
        self._watches: list[Watch] = []

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, topics: list[str]) -> None:
        """Start the emulator, point this process's clients at it, create `topics`."""
        java = shutil.which("java") or "java"
        self.port = free_port()
        proc = self.processes.spawn("pubsub-emulator", [java, "-jar", pubsub_jar(), "--host=127.0.0.1",
                                                        f"--port={self.port}"], dict(os.environ))
        self.processes.wait_ready(proc, lambda: http_ok(f"http://{self.host}/", b"Ok"))
        os.environ["PUBSUB_EMULATOR_HOST"] = self.host  # the clients in this process too
        from google.cloud import pubsub_v1

        self.publisher = pubsub_v1.PublisherClient()
        self.subscriber = pubsub_v1.SubscriberClient()
        for topic in topics:
            self.publisher.create_topic(name=self.topic_path(topic))

    def topic_path(self, topic: str) -> str:
        return f"projects/{self.project}/topics/{topic}"

    def subscription_path(self, name: str) -> str:
        return f"projects/{self.project}/subscriptions/{name}"

    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        return self.publisher.publish(self.topic_path(topic), data, **(attributes or {})).result(timeout=30)

    def create_subscription(self, request: dict) -> None:
        self.subscriber.create_subscription(request=request)

    def add_pull_subscription(self, topic: str, name: str) -> str:
        path = self.subscription_path(name)
        self.create_subscription({"name": path, "topic": self.topic_path(topic), "ack_deadline_seconds": 60})
        return path

    def pull(self, subscription: str, timeout: float = 30.0, max_messages: int = 10) -> list:
        """Synchronous pull until at least one message arrives (acked), or [] at the timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                response = self.subscriber.pull(request={"subscription": subscription, "max_messages": max_messages},
                                                timeout=max(1.0, min(5.0, deadline - time.monotonic())))
            except Exception:  # DeadlineExceeded when nothing came
                continue
            if response.received_messages:
                self.subscriber.acknowledge(request={"subscription": subscription,
                                                     "ack_ids": [m.ack_id for m in response.received_messages]})
                return [m.message for m in response.received_messages]
        return []

    def watch(self, topic: str, name: str, parse: Callable) -> Watch:
        """A pull subscription `name` on `topic`, streamed: each message parsed (kept raw when it cannot
        be) and acked."""
        path = self.add_pull_subscription(topic, name)
        watch = Watch(path)

        def callback(message) -> None:
            try:
                item = parse(message.data)
            except Exception:  # keep what cannot be parsed as raw bytes
                item = message.data
            watch.add(item, dict(message.attributes))
            message.ack()

        watch.future = self.subscriber.subscribe(path, callback)
        self._watches.append(watch)
        return watch

    def close(self) -> None:
        """Cancel the watches and close the clients (the process is stopped with the others)."""
        for watch in self._watches:
            try:
                watch.future.cancel()
                watch.future.result(timeout=5)
            except Exception:
                pass
        for client in (self.subscriber, self.publisher):
            try:
                if client is not None and hasattr(client, "close"):
                    client.close()
                elif client is not None:
                    client.stop()
            except Exception:
                pass
