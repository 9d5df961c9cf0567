"""OpenAI's image edit API (the roadmap's "option B") for expand, through the official SDK: the
canvas as a PNG upload plus the prompt in, the base64 image of the answer out. Every failure becomes
ProviderFailed with a reason a person can read."""

from __future__ import annotations

import base64
import binascii
import email.utils
import io
import logging
import threading
import time

import openai
from PIL import Image

from shared.errors import ProviderFailed
from shared.providers.generation.base import Generator

log = logging.getLogger(__name__)

_DEFAULT_429_WAIT_S = 1.0  # when a 429 names no delay


class OpenAIImageEditGenerator(Generator):
    name = "openai"

    def __init__(
        self,
        api_key: str,
        model: str,
        *,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        max_retry_wait_s: float = 5.0,
        size: str = "auto",
    ) -> None:
        self._api_key = api_key
        self.model = model
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.max_retry_wait_s = max_retry_wait_s  # a server asking for longer still gets only this
        self.size = size  # "auto" keeps the canvas's aspect; or 1024x1024, 1536x1024, 1024x1536
        self._client: openai.OpenAI | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # no key in reprs, tracebacks or logs
        return f"OpenAIImageEditGenerator(model={self.model!r}, base_url={self.base_url!r})"

    @classmethod
    def from_settings(cls, settings) -> OpenAIImageEditGenerator:
        if settings.openai_api_key is None:
            raise ValueError("CLOSET_OPENAI_API_KEY is not set")
        return cls(
            settings.openai_api_key.get_secret_value(),
            settings.openai_model,
            base_url=settings.openai_base_url,
            timeout_s=settings.expand_timeout_s,
        )

    def warm_up(self) -> None:
        self._get_client()

    def _get_client(self) -> openai.OpenAI:
        with self._lock:
            if self._client is None:
                # max_retries=0: the SDK's own retries would multiply the wait; our single 429 retry is the only one.
                extra = {"base_url": self.base_url} if self.base_url else {}
                self._client = openai.OpenAI(api_key=self._api_key, timeout=self.timeout_s, max_retries=0, **extra)
            return self._client

    def expand(self, canvas: Image.Image, prompt: str) -> Image.Image:
        client = self._get_client()
        buffer = io.BytesIO()
        canvas.save(buffer, format="PNG")
        upload = ("canvas.png", buffer.getvalue(), "image/png")
        for attempt in (1, 2):
            try:
                result = client.images.edit(model=self.model, image=upload, prompt=prompt, size=self.size, n=1)
            except openai.RateLimitError as exc:
                if attempt == 1:
                    wait = min(_named_delay(exc), self.max_retry_wait_s)
                    log.info("OpenAI is rate limited (429); retrying once in %.2f s", wait)
                    time.sleep(wait)
                    continue
                reason = f"OpenAI is rate limited (HTTP 429) even after one retry: {_message(exc)}"
                raise ProviderFailed(self._scrub(reason)) from None
            except openai.APITimeoutError:
                raise ProviderFailed(f"OpenAI did not answer within {self.timeout_s:g} s") from None
            except openai.APIConnectionError as exc:
                raise ProviderFailed(self._scrub(f"OpenAI could not be reached: {exc}")) from None
            except openai.APIStatusError as exc:
                raise ProviderFailed(self._scrub(_describe(exc))) from None
            except openai.APIResponseValidationError:
                raise ProviderFailed("OpenAI returned an answer that could not be read") from None
            return _first_image(result)
        raise AssertionError("unreachable")  # pragma: no cover

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text


def _named_delay(exc: openai.APIStatusError) -> float:
    """The wait a 429 asks for: retry-after-ms, else retry-after in seconds or as an HTTP date."""
    headers = exc.response.headers
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            return max(0.0, float(headers.get(name, "")) / divisor)
        except ValueError:
            pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(headers.get("retry-after", "")).timestamp() - time.time())
    except (TypeError, ValueError):
        return _DEFAULT_429_WAIT_S


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or exc.message).strip()[:200]


def _describe(exc: openai.APIStatusError) -> str:
    code = exc.body.get("code") if isinstance(exc.body, dict) else None
    if code == "moderation_blocked" or code == "content_policy_violation":
        return f"OpenAI refused to edit the image ({code}): {_message(exc)}"
    if exc.status_code >= 500:
        return f"OpenAI failed on its side (HTTP {exc.status_code}): {_message(exc)}"
    return f"OpenAI rejected the request (HTTP {exc.status_code}): {_message(exc)}"


def _first_image(result: object) -> Image.Image:
    data = getattr(result, "data", None) or []
    encoded = data[0].b64_json if data else None
    if not encoded:
        raise ProviderFailed("OpenAI returned no image: the answer has no base64 image data")
    try:
        image = Image.open(io.BytesIO(base64.b64decode(encoded, validate=True)))
        image.load()
    except (binascii.Error, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise ProviderFailed("OpenAI returned an image that cannot be decoded") from None
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
    return image
