"""Cloud Function: remove_background. Pushed by its Pub/Sub subscription; see shared/stages/remove_background.py."""

import functions_framework

from shared.cloud_runtime import handle_stage_event


@functions_framework.cloud_event
def handle(event) -> None:
    handle_stage_event("remove_background", event)
