"""Cloud Function (HTTP): upload_url. Returns a signed PUT URL for the app's upload; see shared/http/upload_url.py."""

import functions_framework

from shared.http.upload_url import handle_http


@functions_framework.http
def handle(request):
    return handle_http(request)
