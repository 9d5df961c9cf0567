"""The result delivered to the app's HTTPS endpoint, signed so the receiver can trust it.

Signature header: `X-Closet-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
`verify` is what the receiver runs: it rejects a wrong signature, a changed body and a replay
outside its time window.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

import httpx

from shared.documents import ResultDocument

log = logging.getLogger("closet.webhook")
HEADER = "X-Closet-Signature"


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, *, tolerance_s: int = 300, now: float | None = None) -> bool:
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
        signature = parts["v1"]
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, signature)


class WebhookNotifier:
    def __init__(self, url: str, secret: str, *, attempts: int = 6, timeout_s: float = 4.0, backoff_s: float = 1.0) -> None:
        self.url = url
        self.secret = secret
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.client = httpx.Client(timeout=timeout_s)

    @classmethod
    def from_settings(cls, settings) -> "WebhookNotifier | None":
        if not settings.webhook_url:
            return None
        if settings.webhook_secret is None:
            raise ValueError("CLOSET_WEBHOOK_SECRET must be set when CLOSET_WEBHOOK_URL is")
        return cls(settings.webhook_url, settings.webhook_secret.get_secret_value(), attempts=settings.webhook_attempts,
                   timeout_s=settings.webhook_timeout_s, backoff_s=settings.webhook_backoff_s)

    def send(self, document: ResultDocument) -> bool:
        """POST with retries and backoff. A receiver that stays down is logged, not raised: the
        result is already on the results topic, where the app can still read it."""
        body = document.to_json()
        for attempt in range(1, self.attempts + 1):
            try:
                response = self.client.post(self.url, content=body, headers={
                    "Content-Type": "application/json", HEADER: sign(self.secret, body)})
                if response.status_code < 300:
                    return True
                reason = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                reason = type(exc).__name__
            log.warning("webhook attempt %d/%d failed: %s", attempt, self.attempts, reason, extra={"jobId": document.job_id})
            if attempt < self.attempts:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
        log.error("webhook gave up; the result stays on the results topic", extra={"jobId": document.job_id})
        return False
