"""The entry point of an HTTP function (status, upload_url): a Flask request in, the handler's
(body, status, headers) out. It imports nothing of the runtime, so upload_url's zip carries none."""

from __future__ import annotations

from collections.abc import Callable

import functions_framework


def http_function(handle_http: Callable):
    """`handle_http(request)` as functions-framework's HTTP entry point (named `handle`, as deployed)."""

    @functions_framework.http
    def handle(request):
        return handle_http(request)

    return handle
