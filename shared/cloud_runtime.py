"""What a Cloud Function instance builds once and reuses for every event: settings, the GCS store,
the Pub/Sub bus, the dispatcher. Each function's main.py is a few lines over this module."""

from __future__ import annotations

import logging
import os
from functools import lru_cache

from shared.config import get_settings
from shared.dispatch import Dispatcher, WARMUP_ATTRIBUTE
from shared.errors import InvalidObjectPath
from shared.events import from_cloud_event_data, job_request_from_notification
from shared.logs import configure_logging
from shared.stages.context import StageContext, StoredWorkImages

log = logging.getLogger("closet.function")


@lru_cache(maxsize=1)
def dispatcher() -> Dispatcher:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from shared.adapters.blobstore.gcs import GcsBlobStore
    from shared.adapters.bus.pubsub import PubSubBus
    from shared.webhook import WebhookNotifier

    configure_logging()
    settings = get_settings()
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    client = (storage.Client(project=settings.project_id, credentials=AnonymousCredentials(),
                             client_options={"api_endpoint": emulator})
              if emulator else storage.Client(project=settings.project_id))
    buckets = {"uploads": settings.uploads_bucket, "work": settings.work_bucket,
               "results": settings.results_bucket, "cache": settings.cache_bucket}
    store = GcsBlobStore(client, buckets, signed_url_ttl_s=settings.signed_url_ttl_s, public_endpoint=emulator)
    ctx = StageContext(settings, store, StoredWorkImages(store))
    notifier = WebhookNotifier.from_settings(settings)
    return Dispatcher(ctx, PubSubBus(settings.project_id), on_result=notifier.send if notifier else None)


def handle_stage_event(stage: str, event) -> None:
    """A stage's push: decode, run (or warm up), publish. Raising makes Pub/Sub redeliver."""
    pushed = from_cloud_event_data(event.data)
    dispatcher().handle(stage, pushed.data, pushed.attributes, pushed.delivery_attempt)


def handle_upload_event(event) -> None:
    """The ingest function's push: a GCS notification (or a warm-up) becomes a job."""
    pushed = from_cloud_event_data(event.data)
    if pushed.attributes.get(WARMUP_ATTRIBUTE):
        dispatcher().warm_up("ingest")
        return
    try:
        request = job_request_from_notification(pushed.attributes)
    except InvalidObjectPath as refused:
        log.warning("upload refused: %s", refused.message, extra={"stage": "ingest"})
        return  # acked: retrying a bad path cannot help
    if request is None:
        return
    dispatcher().run("ingest", request)


def handle_dead_letter_event(event) -> None:
    pushed = from_cloud_event_data(event.data)
    if pushed.attributes.get(WARMUP_ATTRIBUTE):
        return
    dispatcher().handle_dead_letter(pushed.data, pushed.attributes)
