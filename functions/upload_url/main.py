"""Cloud Function (HTTP): upload_url. Returns a signed PUT URL for the app's upload; see shared/http/upload_url.py."""

from shared.http.function import http_function
from shared.http.upload_url import handle_http

handle = http_function(handle_http)
