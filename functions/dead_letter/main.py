"""Cloud Function: dead_letter. A message that failed every delivery ends its job as failed."""

import functions_framework

from shared.cloud_runtime import handle_dead_letter_event


@functions_framework.cloud_event
def handle(event) -> None:
    handle_dead_letter_event(event)
