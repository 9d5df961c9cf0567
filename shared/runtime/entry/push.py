"""What every Pub/Sub-pushed function shares: its CloudEvent handler (decode the push, log one `hop`
line per delivery, warm up or handle the message; raising makes Pub/Sub redeliver). Each kind of
pushed entry point builds on this: stage.py, upload.py, failure_handler.py, subscriber.py."""

from __future__ import annotations

import logging
from typing import Callable

import flask
import functions_framework

from shared.runtime import trace
from shared.runtime.events import PushedMessage, from_cloud_event_data

log = logging.getLogger("closet.function")
def _push_envelope() -> dict | None:
    """The raw push body of the request being handled (what functions-framework parsed the event
    from), for the fields its CloudEvent drops."""
    try:
        return flask.request.get_json(silent=True, cache=True)
    except RuntimeError:  # called outside a request (a test calling the handler directly)
        return None


def pushed_handler(function: str, on_message: Callable[[PushedMessage], None], on_warm_up: Callable[[], None]):
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
