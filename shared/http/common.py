"""What both HTTP functions share: the error they answer with, the bearer-token check and CORS."""

from __future__ import annotations

import hmac

from shared.config import get_settings

SECRET_ENV = "CLOSET_UPLOAD_URL_SECRET"


class HttpError(Exception):
    """An answer other than 200: status code and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def authorize(authorization: str | None, secret: str | None = None) -> None:
    """Raise 503 when no secret is configured (never anonymous), 401 for a missing or wrong one."""
    if secret is None:
        configured = get_settings().upload_url_secret
        secret = configured.get_secret_value() if configured else None
    if not secret:
        raise HttpError(503, f"this endpoint is not configured ({SECRET_ENV} is unset)")
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not presented:
        raise HttpError(401, "missing bearer token")
    if not hmac.compare_digest(presented.strip().encode(), secret.encode()):
        raise HttpError(401, "wrong bearer token")


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
