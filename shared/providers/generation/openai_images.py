"""OpenAI's image edit API (the roadmap's "option B") for expand, through the official SDK: the
canvas as a PNG upload plus the prompt in, the base64 image of the answer out. Every failure becomes
ProviderFailed with a reason a person can read."""

from __future__ import annotations

import base64
import binascii
import email.utils
import logging
import time

import openai
from PIL import Image

from shared.errors import ProviderFailed
from shared.providers.generation.base import DEFAULT_429_WAIT_S, RemoteGenerator

log = logging.getLogger(__name__)


class OpenAIImageEditGenerator(RemoteGenerator):
    name = "openai"
    label = "OpenAI"

    def __init__(self, api_key: str, model: str, *, size: str = "auto", **options) -> None:
        super().__init__(api_key, model, **options)
        self.size = size  # "auto" keeps the canvas's aspect; or 1024x1024, 1536x1024, 1024x1536

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

    def _create_client(self) -> openai.OpenAI:
        # max_retries=0: the SDK's own retries would multiply the wait; our single 429 retry is the only one.
        extra = {"base_url": self.base_url} if self.base_url else {}
        return openai.OpenAI(api_key=self._api_key, timeout=self.timeout_s, max_retries=0, **extra)

    def expand(self, canvas: Image.Image, prompt: str) -> Image.Image:
        client = self._get_client()
        upload = ("canvas.png", self.encode_canvas(canvas), "image/png")
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
            return self.decode_answer(_first_image_data(result))
        raise AssertionError("unreachable")  # pragma: no cover


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
        return DEFAULT_429_WAIT_S


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


def _first_image_data(result: object) -> bytes:
    data = getattr(result, "data", None) or []
    encoded = data[0].b64_json if data else None
    if not encoded:
        raise ProviderFailed("OpenAI returned no image: the answer has no base64 image data")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ProviderFailed("OpenAI returned an image that cannot be decoded") from None
