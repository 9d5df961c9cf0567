"""The webhook's entry point (functions/webhook), pushed from its own subscription on the results
topic. The result on the topic names its files; each delivery signs them afresh (as the status
function does for each answer), so a delivery that Pub/Sub retries hours later still hands the app
links that work. One POST per delivery; a failure raises, so Pub/Sub retries with its backoff."""

from __future__ import annotations

import logging
import time

from shared.config import get_settings
from shared.documents import ResultDocument
from shared.runtime.entry.push import pushed_handler
from shared.runtime.events import PushedMessage
from shared.runtime.links import signed
from shared.runtime.logs import configure_logging
from shared.runtime.webhook import WebhookSender
from shared.topology import function_timeout_s

log = logging.getLogger("closet.function")


def webhook_function(sender: WebhookSender | None = None, store=None):
    """`sender` and `store` are built from the settings at the first delivery unless given (tests)."""
    timeout_s = function_timeout_s("webhook")
    built: dict = {}

    def on_message(pushed: PushedMessage) -> None:
        started = time.monotonic()
        if not built:
            configure_logging()
            settings = get_settings()
            built["sender"] = sender or WebhookSender.from_settings(settings)
            if store is None and built["sender"] is not None:
                from shared.adapters.blobstore.gcs import store_from_settings

                built["store"] = store_from_settings(settings)
            else:
                built["store"] = store
        if built["sender"] is None:
            log.info("no CLOSET_WEBHOOK_URL: result not sent", extra={"stage": "webhook"})
            return
        try:
            document = ResultDocument.model_validate_json(pushed.data)
        except ValueError:
            log.error("not a result document: not sent", extra={"stage": "webhook"})
            return  # acked: no redelivery can make it one
        body = signed(document, built["store"]).to_json()  # links valid from this delivery on
        built["sender"].send(body, time_left_s=timeout_s - (time.monotonic() - started))

    return pushed_handler("webhook", on_message, lambda: None)
