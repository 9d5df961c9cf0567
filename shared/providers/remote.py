"""What every provider that calls a remote API shares, written once:

- a failed exchange becomes ProviderFailed (transient: a chain hands over to its next provider, a job
  is retried): no answer in time, no connection, a non-2xx status with the remote's own words, an
  answer that cannot be read, an image that does not decode;
- an answer that asks to be tried again (429, 502-504) is, as often as the provider allows, after
  the delay the server names (capped) and only while that wait ends before the caller's deadline.

A provider keeps only its request and the parsing of its answer. Apart from any one provider, so
that using it loads no other provider (segment ships no background provider).
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import io
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import httpx
from PIL import Image

from shared.errors import ProviderFailed

log = logging.getLogger(__name__)
T = TypeVar("T")

# Answers that say "not now" rather than "not this request": rate limited, or an upstream or
# gateway briefly away. A 500 is the service failing on this request; another try rarely cures it.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
DEFAULT_RETRY_WAIT_S = 1.0  # when such an answer names no delay
# What parsing an answer raises when its JSON is not what the API documents.
MALFORMED = (ValueError, KeyError, IndexError, TypeError, AttributeError)


def error_detail(response: httpx.Response) -> str:
    """The remote's own words from a JSON error body ({"errors": [{"title": ...}]} or {"detail"/"error": ...})."""
    try:
        payload = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return ""
    if isinstance(payload, dict):
        errors = payload.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("title") or errors[0].get("detail") or "")
        for key in ("detail", "error", "message"):
            if isinstance(payload.get(key), str):
                return payload[key]
    return ""


def named_delay(headers: Mapping[str, str]) -> float | None:
    """The wait an answer asks for: retry-after-ms, else Retry-After in seconds or as an HTTP date."""
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            return max(0.0, float(headers.get(name, "")) / divisor)
        except ValueError:
            pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(headers.get("retry-after", "")).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class Refused(Exception):
    """A non-2xx answer in terms every transport shares, raised by a provider's request for `call`."""

    def __init__(self, status: int, detail: str = "", delay_s: float | None = None, status_text: str = "") -> None:
        super().__init__(status)
        self.status = status
        self.detail = detail  # the remote's own words
        self.delay_s = delay_s  # the wait it named, if any
        self.status_text = status_text  # e.g. Google's "RESOURCE_EXHAUSTED"


@dataclass(frozen=True)
class Wording:
    """How reasons put a refusal and a timeout; fields are format strings of who, code, status, timeout_s."""

    rate_limited: str
    failed: str  # 5xx
    refused: str  # any other status: 400 no foreground, 402 no credits, 403 bad key...
    timed_out: str


# How the background chain's and the segmenter's reasons put it (results record them, tests pin them).
SERVICE_WORDING = Wording(rate_limited="{who} is rate-limiting us ({code})", failed="{who} answered {code}",
                          refused="{who} refused the photo ({code})", timed_out="{who} timed out after {timeout_s:g} s")


class RemoteProvider:
    """The shared behaviour; a provider class derives from it and from its kind's interface."""

    who = "the remote provider"  # how reasons name the service
    wording = SERVICE_WORDING
    attempts = 1  # 1: hand over at once (a chain's next provider, Pub/Sub's redelivery do better)
    # What the transport raises for "no answer in time" and for "no connection"; timeouts first.
    timeouts: tuple[type[BaseException], ...] = (httpx.TimeoutException,)
    unreachable: tuple[type[BaseException], ...] = (httpx.HTTPError,)
    timeout_s: float = 30.0
    max_retry_wait_s: float = 5.0  # a server asking for longer still gets only this
    _api_key: str = ""  # a secret no reason may show

    def call(self, request: Callable[[], T], deadline: float | None = None) -> T:
        """request()'s answer, or ProviderFailed. A Refused answer in RETRY_STATUSES is tried again,
        up to `attempts` in all, when the wait ends before `deadline` (time.monotonic(); None: no
        deadline but the attempts): a try after the caller has given up would only cost."""
        for attempt in range(1, self.attempts + 1):
            try:
                return request()
            except self.timeouts:
                raise self.timed_out() from None
            except self.unreachable as exc:
                raise self.failure(f"{self.who} could not be reached ({type(exc).__name__})") from None
            except Refused as refused:
                wait = min(DEFAULT_RETRY_WAIT_S if refused.delay_s is None else refused.delay_s, self.max_retry_wait_s)
                if (refused.status not in RETRY_STATUSES or attempt == self.attempts
                        or (deadline is not None and time.monotonic() + wait >= deadline)):
                    raise self.refusal(refused, attempt) from None
                log.info("%s answered %d; retrying once more in %.2f s (attempt %d of %d)",
                         self.who, refused.status, wait, attempt + 1, self.attempts)
            time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover - the last attempt returns or raises

    def refusal(self, refused: Refused, attempts: int = 1) -> ProviderFailed:
        code = refused.status
        template = (self.wording.rate_limited if code == 429 else self.wording.failed if code >= 500
                    else self.wording.refused)
        status = f"HTTP {code}" + (f" {refused.status_text}" if refused.status_text else "")
        reason = template.format(who=self.who, code=code, status=status)
        if attempts > 1:
            reason += f" after {attempts} attempts"
        return self.failure(f"{reason}: {refused.detail}" if refused.detail else reason)

    def timed_out(self) -> ProviderFailed:
        return self.failure(self.wording.timed_out.format(who=self.who, timeout_s=self.timeout_s))

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Around the parsing of an answer: JSON that is not what the API documents is malformed."""
        try:
            yield
        except MALFORMED:
            raise self.malformed() from None

    def malformed(self) -> ProviderFailed:
        return self.failure(f"{self.who} answered malformed JSON")

    def broken(self, what: str = "image") -> ProviderFailed:
        return self.failure(f"{self.who} returned a broken {what} that cannot be decoded")

    def failure(self, reason: str) -> ProviderFailed:
        return ProviderFailed(reason.replace(self._api_key, "***") if self._api_key else reason)

    def image(self, data: bytes, what: str = "image") -> Image.Image:
        """The decoded image of an answer; one that does not decode is the provider's fault."""
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            raise self.broken(what) from None
        return image

    def image_b64(self, text: str, what: str = "image") -> Image.Image:
        """`image` of base64 text (a data: URL too)."""
        if text.startswith("data:"):
            text = text.split(",", 1)[1]
        try:
            return self.image(base64.b64decode(text, validate=True), what)
        except (binascii.Error, ValueError):
            raise self.broken(what) from None


class HttpProvider(RemoteProvider):
    """A remote provider speaking plain HTTP through one pooled httpx client (connections are reused
    across photos of a warm function)."""

    def __init__(self, timeout_s: float, *, headers: dict[str, str] | None = None, api_key: str = "") -> None:
        self.timeout_s = timeout_s
        self._api_key = api_key
        self._client = httpx.Client(headers=headers, timeout=timeout_s)

    def send(self, method: str, url: str, **kwargs) -> httpx.Response:
        """The answer of one request; a non-2xx one is Refused."""
        response = self._client.request(method, url, **kwargs)
        self.check(response)
        return response

    @staticmethod
    def check(response: httpx.Response) -> None:
        if not response.is_success:
            response.read()  # a streamed answer's error body, for its words
            raise Refused(response.status_code, error_detail(response), named_delay(response.headers))

    def close(self) -> None:
        self._client.close()
