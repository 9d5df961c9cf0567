"""Google Cloud Pub/Sub publishing. The client batches and retries on its own; publish waits for
the server's acknowledgement so a stage acks its input only once its output is safely out."""

from __future__ import annotations

from google.cloud import pubsub_v1

from shared.adapters.bus.base import Bus
from shared.errors import TransientError

PUBLISH_TIMEOUT_S = 30


class PubSubBus(Bus):
    def __init__(self, project_id: str, publisher: pubsub_v1.PublisherClient | None = None) -> None:
        self.project_id = project_id
        self.publisher = publisher or pubsub_v1.PublisherClient()

    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> None:
        future = self.publisher.publish(self.publisher.topic_path(self.project_id, topic), data, **(attributes or {}))
        try:
            future.result(timeout=PUBLISH_TIMEOUT_S)
        except Exception as exc:  # any failure to publish means: let Pub/Sub redeliver our input
            raise TransientError(f"Publishing to {topic} failed: {exc}") from exc
