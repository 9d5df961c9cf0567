"""The entry point of the ingest function, pushed by the uploads bucket's notification: a GCS
notification becomes a job."""

from __future__ import annotations

import logging
from types import ModuleType

from shared.errors import InvalidObjectPath
from shared.runtime import trace
from shared.runtime.entry.push import pushed_handler
from shared.runtime.events import PushedMessage, job_request_from_notification
from shared.runtime.instance import dispatcher
from shared.stages.images import StoredWorkImages

log = logging.getLogger("closet.function")


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
