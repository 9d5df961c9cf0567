"""The entry points of the stage functions (`functions/<stage>/main.py` is a few lines over these):
decode the push, run the stage (or warm it up), publish what it produced."""

from __future__ import annotations

import logging
import time
from types import ModuleType

from shared.errors import InvalidObjectPath
from shared.runtime import trace
from shared.runtime.events import PushedMessage, job_request_from_notification
from shared.runtime.instance import dispatcher
from shared.runtime.push import pushed_handler
from shared.stages.images import StoredWorkImages
from shared.topology import function_timeout_s

log = logging.getLogger("closet.function")


def stage_function(stage: ModuleType):
    """The entry point of a stage's function: decode, run (or warm up), publish."""
    name = stage.__name__.rsplit(".", 1)[-1]
    stages = {name: stage}

    def on_message(pushed: PushedMessage) -> None:
        # The request's deadline, from the timeout Terraform deploys (topology.json): leases and
        # retry loops inside the stage stay within it.
        deadline = time.monotonic() + function_timeout_s(name)
        dispatcher(stages, StoredWorkImages).handle(name, pushed.data, pushed.delivery_attempt, deadline)

    return pushed_handler(name, on_message, lambda: dispatcher(stages, StoredWorkImages).warm_up(name))


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
            dispatcher(stages, StoredWorkImages).run("ingest", request)

    return pushed_handler("ingest", on_notification, lambda: dispatcher(stages, StoredWorkImages).warm_up("ingest"))
