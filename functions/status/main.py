"""Cloud Function (HTTP): status. A job's state, progress and result document, read from storage,
for a browser or the app to poll; see shared/http/status.py."""

import functions_framework

from shared.http.status import handle_http


@functions_framework.http
def handle(request):
    return handle_http(request)
