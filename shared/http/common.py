"""What both HTTP functions share: the error they answer with, the bearer-token check and CORS."""

from __future__ import annotations

import hmac
from enum import Enum

from shared.config import get_settings
from shared.errors import InvalidObjectPath
from shared.messages import Frozen

SECRET_ENV = "CLOSET_UPLOAD_URL_SECRET"


class HttpErrorCode(str, Enum):
    """The stable `errorCode` of an HTTP answer other than 200; the message beside it is for people."""

    INVALID_REQUEST = "INVALID_REQUEST"  # a missing or malformed field or parameter (the message names it)
    UNSUPPORTED_CONTENT_TYPE = "UNSUPPORTED_CONTENT_TYPE"
    INVALID_OBJECT_PATH = InvalidObjectPath.code  # the same code the pipeline gives a bad upload key
    UNAUTHORIZED = "UNAUTHORIZED"  # no bearer token, or the wrong one
    NOT_FOUND = "NOT_FOUND"  # no such job or upload, or the caller's own cannot see it
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    NOT_CONFIGURED = "NOT_CONFIGURED"  # the function has no secret: it refuses everyone


# Each code's HTTP status: one table, read by the handlers and by the OpenAPI document.
STATUS = {
    HttpErrorCode.INVALID_REQUEST: 400, HttpErrorCode.UNSUPPORTED_CONTENT_TYPE: 400,
    HttpErrorCode.INVALID_OBJECT_PATH: 400, HttpErrorCode.UNAUTHORIZED: 401, HttpErrorCode.NOT_FOUND: 404,
    HttpErrorCode.METHOD_NOT_ALLOWED: 405, HttpErrorCode.NOT_CONFIGURED: 503,
}


class ErrorAnswer(Frozen):
    """The body of every answer other than 200 (and 204 to a preflight)."""

    error_code: HttpErrorCode
    error: str  # for people; may change wording at any time


class HttpError(Exception):
    """An answer other than 200: its stable code (which fixes the status) and a message."""

    def __init__(self, code: HttpErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = STATUS[code]
        self.message = message

    def answer(self) -> dict:
        return ErrorAnswer(error_code=self.code, error=self.message).model_dump(mode="json")


def authorize(authorization: str | None, secret: str | None = None) -> None:
    """Raise 503 when no secret is configured (never anonymous), 401 for a missing or wrong one."""
    if secret is None:
        configured = get_settings().upload_url_secret
        secret = configured.get_secret_value() if configured else None
    if not secret:
        raise HttpError(HttpErrorCode.NOT_CONFIGURED, f"this endpoint is not configured ({SECRET_ENV} is unset)")
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not presented:
        raise HttpError(HttpErrorCode.UNAUTHORIZED, "missing bearer token")
    if not hmac.compare_digest(presented.strip().encode(), secret.encode()):
        raise HttpError(HttpErrorCode.UNAUTHORIZED, "wrong bearer token")


def cors_headers(origin: str | None, methods: str) -> dict[str, str]:
    """CORS answer headers for a bearer-token API (no cookies): any origin unless CLOSET_CORS_ORIGINS
    lists some."""
    allowed = [o.strip() for o in get_settings().cors_origins.split(",") if o.strip()] or ["*"]
    headers = {"Access-Control-Allow-Methods": methods,
               "Access-Control-Allow-Headers": "Authorization, Content-Type",
               "Access-Control-Max-Age": "3600"}
    if "*" in allowed:
        headers["Access-Control-Allow-Origin"] = "*"
    elif origin and origin in allowed:
        headers.update({"Access-Control-Allow-Origin": origin, "Vary": "Origin"})
    else:
        headers["Vary"] = "Origin"
    return headers
