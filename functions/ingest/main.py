"""Cloud Function: ingest. Triggered by the uploads bucket's notification on `uploads/`."""

import functions_framework

from shared.cloud_runtime import handle_upload_event


@functions_framework.cloud_event
def handle(event) -> None:
    handle_upload_event(event)
