"""What a Cloud Function instance builds once and reuses for every event (settings, the GCS store,
the Pub/Sub bus, a dispatcher over its own stage), and the three kinds of entry point. Each
`functions/<name>/main.py` is a few lines over this module."""

from __future__ import annotations

import logging
import time
from types import ModuleType
from typing import Callable

import flask
import functions_framework

from shared.config import get_settings
from shared.errors import InvalidObjectPath
from shared.runtime import trace
from shared.runtime.dispatch import Dispatcher
from shared.runtime.events import PushedMessage, from_cloud_event_data, job_request_from_notification
from shared.runtime.logs import configure_logging
from shared.stages.context import StageContext, StoredWorkImages
from shared.topology import function_timeout_s

log = logging.getLogger("closet.function")
_DISPATCHERS: dict[str, Dispatcher] = {}


def dispatcher(stages: dict[str, ModuleType]) -> Dispatcher:
    """One per instance (the first event builds it): clients and models are reused across events."""
    key = ",".join(stages) or "dead_letter"
    if key not in _DISPATCHERS:
        from shared.adapters.blobstore.gcs import store_from_settings
        from shared.adapters.bus.pubsub import PubSubBus

        configure_logging()
        settings = get_settings()
        store = trace.timed(store_from_settings(settings), "storage")  # each call's time goes to its hop's log line
        _DISPATCHERS[key] = Dispatcher(StageContext(settings, store, StoredWorkImages(store)),
                                       trace.timed(PubSubBus(settings.project_id), "publish"), stages)
    return _DISPATCHERS[key]


def _push_envelope() -> dict | None:
    """The raw push body of the request being handled (what functions-framework parsed the event
    from), for the fields its CloudEvent drops."""
    try:
        return flask.request.get_json(silent=True, cache=True)
    except RuntimeError:  # called outside a request (a test calling the handler directly)
        return None


def _pushed_handler(function: str, on_message: Callable[[PushedMessage], None], on_warm_up: Callable[[], None]):
    """A CloudEvent handler for a Pub/Sub push: a warm-up only loads; raising makes Pub/Sub redeliver.
    Each delivery logs one `hop` line (shared/runtime/trace.py)."""

    @functions_framework.cloud_event
    def handle(event) -> None:
        message = (event.data or {}).get("message") or {}
        # eventTime is a storage notification's: when the upload was written.
        with trace.hop(function, published_at=message.get("publishTime"),
                 event_time=(message.get("attributes") or {}).get("eventTime")) as current:
            pushed = from_cloud_event_data(event.data, _push_envelope())
            current.fields.update(attempt=pushed.delivery_attempt, warmUp=pushed.warm_up)
            if pushed.warm_up:
                on_warm_up()
            else:
                on_message(pushed)

    return handle


def stage_function(stage: ModuleType):
    """The entry point of a stage's function: decode, run (or warm up), publish."""
    name = stage.__name__.rsplit(".", 1)[-1]
    stages = {name: stage}
    def on_message(pushed: PushedMessage) -> None:
        # The request's deadline, from the timeout Terraform deploys (topology.json): leases and
        # retry loops inside the stage stay within it.
        deadline = time.monotonic() + function_timeout_s(name)
        dispatcher(stages).handle(name, pushed.data, pushed.delivery_attempt, deadline)

    return _pushed_handler(name, on_message, lambda: dispatcher(stages).warm_up(name))


def upload_function(ingest: ModuleType):
    """The ingest function's entry point: a GCS notification becomes a job."""
    stages = {"ingest": ingest}

    def on_notification(pushed: PushedMessage) -> None:
        try:
            request = job_request_from_notification(pushed.attributes)
        except InvalidObjectPath as refused:
            log.warning("upload refused: %s", refused.message, extra={"stage": "ingest"})
            return  # acked: retrying a bad path cannot help
        trace.mark("decoded")
        if request is not None:
            dispatcher(stages).run("ingest", request)

    return _pushed_handler("ingest", on_notification, lambda: dispatcher(stages).warm_up("ingest"))


def dead_letter_function():
    """The failure handler's entry point: a message that failed every delivery ends its job."""
    return _pushed_handler("dead_letter",
                           lambda pushed: dispatcher({}).handle_dead_letter(pushed.data, pushed.attributes),
                           lambda: None)


def webhook_function():
    """The webhook's entry point: pushed from its own subscription on the results topic. One POST per
    delivery; a failure raises, so Pub/Sub retries with its backoff (hours, not seconds)."""
    import time

    from shared.runtime.webhook import WebhookSender

    timeout_s = function_timeout_s("webhook")
    senders: list = []

    def on_message(pushed: PushedMessage) -> None:
        started = time.monotonic()
        if not senders:
            configure_logging()
            senders.append(WebhookSender.from_settings(get_settings()))
        sender = senders[0]
        if sender is None:
            log.info("no CLOSET_WEBHOOK_URL: result not sent", extra={"stage": "webhook"})
            return
        sender.send(pushed.data, time_left_s=timeout_s - (time.monotonic() - started))

    return _pushed_handler("webhook", on_message, lambda: None)
