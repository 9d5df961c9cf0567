"""Google Cloud Pub/Sub publishing. The client batches and retries on its own; publish waits for
the server's acknowledgement so a stage acks its input only once its output is safely out."""

from __future__ import annotations

import os

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from shared.adapters.bus.base import Bus
from shared.errors import TransientError

PUBLISH_TIMEOUT_S = 30
# Local topology only: the emulator has no IAM, so the dev topology names the topics topology.json
# lets this function publish to (comma-separated), and any other is refused as a 403 would be in the
# cloud. Ignored unless PUBSUB_EMULATOR_HOST is set: in the cloud, IAM decides.
ALLOWED_TOPICS_ENV = "CLOSET_EMULATOR_ALLOWED_TOPICS"


def _allowed_topics() -> frozenset[str] | None:
    if not os.environ.get("PUBSUB_EMULATOR_HOST") or ALLOWED_TOPICS_ENV not in os.environ:
        return None
    return frozenset(t for t in os.environ[ALLOWED_TOPICS_ENV].split(",") if t)


class PubSubBus(Bus):
    def __init__(self, project_id: str, publisher: pubsub_v1.PublisherClient | None = None) -> None:
        self.project_id = project_id
        self.publisher = publisher or pubsub_v1.PublisherClient()
        self.allowed_topics = _allowed_topics()

    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> None:
        try:
            if self.allowed_topics is not None and topic not in self.allowed_topics:
                raise gexc.PermissionDenied(f"User not authorized to perform this action (publish to {topic}).")
            future = self.publisher.publish(self.publisher.topic_path(self.project_id, topic), data, **(attributes or {}))
            future.result(timeout=PUBLISH_TIMEOUT_S)
        except Exception as exc:  # any failure to publish means: let Pub/Sub redeliver our input
            raise TransientError(f"Publishing to {topic} failed: {exc}") from exc
