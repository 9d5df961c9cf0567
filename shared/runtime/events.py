"""Decoding what arrives at a function: Pub/Sub push envelopes and GCS object notifications.
Plain dictionaries in, typed values out; no cloud library needed."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from shared.layout import job_id_for, parse_upload_key
from shared.messages import Job, JobRequest

# A Cloud Scheduler job publishes this attribute to every stage's topic: load models, process nothing.
WARMUP_ATTRIBUTE = "warmup"


@dataclass(frozen=True)
class PushedMessage:
    data: bytes
    attributes: dict[str, str]
    delivery_attempt: int

    @property
    def warm_up(self) -> bool:
        return bool(self.attributes.get(WARMUP_ATTRIBUTE))


def from_cloud_event_data(data: dict, envelope: dict | None = None) -> PushedMessage:
    """The Pub/Sub message inside a CloudEvent's data (functions-framework wraps a push this way).
    functions-framework drops the push body's top-level `deliveryAttempt` (Pub/Sub sends it when the
    subscription has a dead-letter policy), so it is read from `envelope`, the raw push body."""
    message = data.get("message", {})
    payload = message.get("data") or ""
    return PushedMessage(
        data=base64.b64decode(payload) if payload else b"",
        attributes=dict(message.get("attributes") or {}),
        delivery_attempt=delivery_attempt(envelope or data),
    )


def delivery_attempt(envelope: dict) -> int:
    """`deliveryAttempt` of a push body; 1 when absent (no dead-letter policy) or unreadable."""
    try:
        return max(1, int(envelope.get("deliveryAttempt") or envelope.get("delivery_attempt") or 1))
    except (TypeError, ValueError):
        return 1


def job_request_from_notification(attributes: dict[str, str]) -> JobRequest | None:
    """A new job for an OBJECT_FINALIZE under uploads/; None for other events. A path that is not
    uploads/{userId}/{clothId}/{file} raises InvalidObjectPath (logged and acked, never retried)."""
    if attributes.get("eventType") != "OBJECT_FINALIZE":
        return None
    key = attributes["objectId"]
    upload = parse_upload_key(key)
    generation = attributes.get("objectGeneration", "0")
    job = Job(
        job_id=job_id_for(key, generation),
        cloth_id=upload.cloth_id,
        user_id=upload.user_id,
        upload=key,
        # An overwrite is a new notification with a new generation: a new job that never reads the old bytes.
        upload_generation=int(generation) if generation.isdigit() and int(generation) > 0 else None,
        uploaded_at=attributes.get("eventTime") or None,
        upload_name=upload.file_name,
    )
    return JobRequest(job=job)
