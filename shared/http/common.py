"""What both HTTP functions share: the error they answer with, the bearer-token check and CORS."""

from __future__ import annotations

import hmac

from pydantic import Field

from shared.config import get_settings
from shared.errors import HttpErrorCode
from shared.messages import Frozen

SECRET_ENV = "CLOSET_UPLOAD_URL_SECRET"


# Each code's HTTP status: one table, read by the handlers and by the OpenAPI document.
STATUS = {
    HttpErrorCode.INVALID_REQUEST: 400, HttpErrorCode.UNSUPPORTED_CONTENT_TYPE: 400,
    HttpErrorCode.INVALID_OBJECT_PATH: 400, HttpErrorCode.UNAUTHORIZED: 401, HttpErrorCode.NOT_FOUND: 404,
    HttpErrorCode.METHOD_NOT_ALLOWED: 405, HttpErrorCode.NOT_CONFIGURED: 503,
}

# The sentence a person reads when a refusal comes with none of its own (the demo page shows it, an app
# may): one per code, so every refusal carries one.
SENTENCES = {
    HttpErrorCode.INVALID_REQUEST: "The request could not be used; please try again.",
    HttpErrorCode.UNSUPPORTED_CONTENT_TYPE: "This file is not a photo we can read.",
    HttpErrorCode.INVALID_OBJECT_PATH: "The photo's file name cannot be used; rename it and try again.",
    HttpErrorCode.UNAUTHORIZED: "The upload service did not accept this page's key. Reload the page; if it keeps "
                                "happening, the service is set up wrongly.",
    HttpErrorCode.NOT_FOUND: "That photo could not be found.",
    HttpErrorCode.METHOD_NOT_ALLOWED: "The upload service was called the wrong way.",
    HttpErrorCode.NOT_CONFIGURED: "Uploading is not set up on this server yet.",
}


class ErrorAnswer(Frozen):
    """The body of every answer other than 200 (and 204 to a preflight)."""

    error_code: HttpErrorCode = Field(description="Stable: what a program branches on.")
    error: str = Field(description="For the developer calling: names the field or parameter at fault; "
                                   "its wording may change at any time.")
    message: str = Field(description="A sentence for the person using the app (the demo page shows it); "
                                     "its wording may change at any time.")


class HttpError(Exception):
    """An answer other than 200: its stable code (which fixes the status), a message for the developer
    calling and a sentence for the person who may see the refusal (the code's own unless given)."""

    def __init__(self, code: HttpErrorCode, message: str, sentence: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = STATUS[code]
        self.message = message
        self.sentence = sentence or SENTENCES[code]

    def answer(self) -> dict:
        return ErrorAnswer(error_code=self.code, error=self.message, message=self.sentence).model_dump(mode="json")


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
