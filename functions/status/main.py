"""Cloud Function (HTTP): status. A job's state, progress and result document, read from storage,
for a browser or the app to poll; see shared/http/status.py."""

from shared.http.function import http_function
from shared.http.status import handle_http

handle = http_function(handle_http)
