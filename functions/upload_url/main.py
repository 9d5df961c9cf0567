"""Cloud Function (HTTP): upload_url. Returns a signed PUT URL for the app's upload; see shared/upload_urls.py."""

import functions_framework

from shared.upload_urls import handle_http


@functions_framework.http
def handle(request):
    return handle_http(request)
