"""Gemini image generation (google-genai SDK) for expand: the canvas and the prompt in, the first
image part of the answer out. Every failure becomes ProviderFailed with a reason a person can read."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import httpx
import pydantic
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from PIL import Image

from shared.errors import ProviderFailed
from shared.providers.generation.base import DEFAULT_429_WAIT_S, RemoteGenerator

try:  # google-genai 3.x sends through httpx2 when it is installed, else httpx
    import httpx2

    _TIMEOUTS: tuple[type[BaseException], ...] = (httpx.TimeoutException, httpx2.TimeoutException)
    _TRANSPORT: tuple[type[BaseException], ...] = (httpx.TransportError, httpx2.TransportError)
except ImportError:  # pragma: no cover - depends on the environment
    _TIMEOUTS = (httpx.TimeoutException,)
    _TRANSPORT = (httpx.TransportError,)

log = logging.getLogger(__name__)

_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


class GeminiGenerator(RemoteGenerator):
    name = "gemini"
    label = "Gemini"

    @classmethod
    def from_settings(cls, settings) -> GeminiGenerator:
        if settings.gemini_api_key is None:
            raise ValueError("CLOSET_GEMINI_API_KEY is not set")
        return cls(
            settings.gemini_api_key.get_secret_value(),
            settings.gemini_model,
            base_url=settings.gemini_base_url,
            timeout_s=settings.expand_timeout_s,
        )

    def _create_client(self) -> genai.Client:
        options = types.HttpOptions(
            timeout=max(1, round(self.timeout_s * 1000)),  # the SDK counts milliseconds
            # google-genai 3.6 sends once when retry_options is unset, but documents 5 attempts
            # (on 408/429/5xx) as the default: pin 1 so the single 429 retry below is the only one.
            retry_options=types.HttpRetryOptions(attempts=1),
        )
        if self.base_url:
            options.base_url = self.base_url
        # vertexai=False: the key is a Gemini API key whatever GOOGLE_GENAI_USE_VERTEXAI says.
        return genai.Client(api_key=self._api_key, vertexai=False, http_options=options)

    def expand(self, canvas: Image.Image, prompt: str) -> Image.Image:
        client = self._get_client()
        contents: list[Any] = [types.Part.from_bytes(data=self.encode_canvas(canvas), mime_type="image/png"), prompt]
        config = types.GenerateContentConfig(response_modalities=["IMAGE"])
        for attempt in (1, 2):
            try:
                response = client.models.generate_content(model=self.model, contents=contents, config=config)
            except genai_errors.APIError as exc:
                if exc.code == 429 and attempt == 1:
                    wait = min(_named_delay(exc), self.max_retry_wait_s)
                    log.info("Gemini is rate limited (429); retrying once in %.2f s", wait)
                    time.sleep(wait)
                    continue
                raise ProviderFailed(self._scrub(_describe(exc))) from None
            except _TIMEOUTS:
                raise ProviderFailed(f"Gemini did not answer within {self.timeout_s:g} s") from None
            except _TRANSPORT as exc:
                raise ProviderFailed(self._scrub(f"Gemini could not be reached: {exc}")) from None
            except pydantic.ValidationError as exc:  # the SDK decodes inline data while parsing the answer
                if any("data" in error["loc"] for error in exc.errors()):
                    raise ProviderFailed("Gemini returned an image that cannot be decoded") from None
                raise ProviderFailed("Gemini returned an answer that could not be read") from None
            return self.decode_answer(_first_image_data(response))
        raise AssertionError("unreachable")  # pragma: no cover


def _named_delay(exc: genai_errors.APIError) -> float:
    """The wait a 429 asks for: RetryInfo.retryDelay ("7s") in the error details, else Retry-After."""
    body = exc.details[0] if isinstance(exc.details, list) and exc.details else exc.details
    error = body.get("error", body) if isinstance(body, dict) else {}
    for detail in error.get("details", []) if isinstance(error, dict) else []:
        if isinstance(detail, dict) and detail.get("@type") == _RETRY_INFO:
            match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)s\s*", str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    headers = getattr(exc.response, "headers", None) or {}
    try:
        return max(0.0, float(headers.get("retry-after", "")))
    except ValueError:
        return DEFAULT_429_WAIT_S


def _describe(exc: genai_errors.APIError) -> str:
    message = (exc.message or "").strip()[:200]
    status = f"HTTP {exc.code}" + (f" {exc.status}" if exc.status else "")
    if exc.code == 429:
        return f"Gemini is rate limited ({status}) even after one retry: {message}"
    if exc.code and exc.code >= 500:
        return f"Gemini failed on its side ({status}): {message}"
    return f"Gemini rejected the request ({status}): {message}"


def _first_image_data(response: types.GenerateContentResponse) -> bytes:
    texts: list[str] = []
    reasons: list[str] = []
    for candidate in response.candidates or []:
        for part in (candidate.content.parts if candidate.content else None) or []:
            blob = part.inline_data
            if blob is not None and blob.data and (blob.mime_type or "").startswith("image/"):
                return blob.data
            if part.text:
                texts.append(part.text.strip())
        if candidate.finish_reason is not None:
            reasons.append(f"finish reason {getattr(candidate.finish_reason, 'value', candidate.finish_reason)}")
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        reasons.append(f"prompt blocked ({getattr(feedback.block_reason, 'value', feedback.block_reason)})")
    if texts:
        snippet = " ".join(texts)
        reasons.append(repr(snippet if len(snippet) <= 200 else snippet[:200] + "…"))
    raise ProviderFailed(f"Gemini returned no image: {', '.join(reasons) or 'empty answer'}")
