"""Cloud Function: expand. Pushed by its Pub/Sub subscription; see shared/stages/expand.py."""

import functions_framework

from shared.cloud_runtime import handle_stage_event


@functions_framework.cloud_event
def handle(event) -> None:
    handle_stage_event("expand", event)
