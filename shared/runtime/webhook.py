"""The result delivered to the app's HTTPS endpoint, signed so the receiver can trust it. The webhook
function (functions/webhook) sends it from its own push subscription on the results topic.

Signature header: `X-Closet-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
`verify` is what the receiver runs: it rejects a wrong signature, a changed body and a replay
outside its time window (clients/java/ has the same for a Java receiver, which also refuses a replay
inside the window). WebhookRequest is the request as the contract (contract/) describes it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from shared.documents import ResultDocument

log = logging.getLogger("closet.webhook")
HEADER = "X-Closet-Signature"
SIGNATURE = re.compile(r"t=([0-9]{1,12}),v1=([0-9a-f]{64})")  # always applied with fullmatch
TOLERANCE_S = 300  # how old a signature a receiver accepts


class WebhookHeaders(BaseModel):
    """The headers of the POST that matter to the receiver (names are case-insensitive on the wire)."""

    model_config = ConfigDict(extra="allow")  # HTTP clients add their own (User-Agent, ...)
    content_type: Literal["application/json"] = Field("application/json", alias="Content-Type")
    signature: str = Field(alias=HEADER, pattern=f"^{SIGNATURE.pattern}$",
                           description='t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the shared secret>')


class WebhookRequest(BaseModel):
    """What the webhook function POSTs to CLOSET_WEBHOOK_URL: the result document, signed."""

    model_config = ConfigDict(extra="forbid")
    method: Literal["POST"]
    headers: WebhookHeaders
    body: ResultDocument = Field(description="The result published on cloth-results, its file names replaced "
                                             "by links signed for this delivery.")


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, *, tolerance_s: int = TOLERANCE_S, now: float | None = None) -> bool:
    match = SIGNATURE.fullmatch(header or "")
    if match is None:
        return False
    timestamp, signature = int(match[1]), match[2]
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, signature)


class WebhookFailed(RuntimeError):
    """The receiver did not take the result this time; raised so Pub/Sub redelivers it later."""


# Seconds kept back from the function's remaining time: the answer must reach Pub/Sub before the
# function is cut off, or the delivery counts as failed even when the POST went through.
DEADLINE_MARGIN_S = 2.0


class WebhookSender:
    """Sends one result document per delivery of the webhook function's subscription on the results
    topic. Retrying is Pub/Sub's job (its retry policy and dead-letter topic), not this loop's."""

    def __init__(self, url: str, secret: str, *, timeout_s: float = 4.0, client: httpx.Client | None = None) -> None:
        self.url = url
        self.secret = secret
        self.timeout_s = timeout_s
        self.client = client or httpx.Client()

    @classmethod
    def from_settings(cls, settings) -> "WebhookSender | None":
        if not settings.webhook_url:
            return None
        if settings.webhook_secret is None:
            raise ValueError("CLOSET_WEBHOOK_SECRET must be set when CLOSET_WEBHOOK_URL is")
        return cls(settings.webhook_url, settings.webhook_secret.get_secret_value(), timeout_s=settings.webhook_timeout_s)

    def send(self, body: bytes, *, time_left_s: float | None = None) -> bool:
        """One signed POST of `body` (a result document), within the time left. True: delivered;
        False: refused for good (a 4xx other than 408/429: retrying cannot help; logged, acked).
        Raises WebhookFailed for anything worth retrying."""
        job_id = _job_id(body)
        timeout = self.timeout_s if time_left_s is None else min(self.timeout_s, time_left_s - DEADLINE_MARGIN_S)
        if timeout <= 0:
            raise WebhookFailed("no time left in this delivery")
        try:
            response = self.client.post(self.url, content=body, timeout=timeout, headers={
                "Content-Type": "application/json", HEADER: sign(self.secret, body)})
        except httpx.HTTPError as exc:
            log.warning("webhook failed: %s; Pub/Sub will retry", type(exc).__name__, extra={"jobId": job_id})
            raise WebhookFailed(type(exc).__name__) from exc
        status = response.status_code
        if status < 300:
            return True
        if 400 <= status < 500 and status not in (408, 429):
            log.error("webhook refused with HTTP %d: not retried", status, extra={"jobId": job_id})
            return False
        log.warning("webhook answered HTTP %d; Pub/Sub will retry", status, extra={"jobId": job_id})
        raise WebhookFailed(f"HTTP {status}")


def _job_id(body: bytes) -> str | None:
    try:
        return ResultDocument.model_validate_json(body).job_id
    except ValueError:
        return None
