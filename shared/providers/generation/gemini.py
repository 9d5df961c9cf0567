"""Gemini image generation (google-genai SDK) for expand: the canvas and the prompt in, the first
image part of the answer out. Every failure becomes ProviderFailed with a reason a person can read."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pydantic
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from PIL import Image

from shared.errors import ProviderFailed
from shared.providers.generation.base import RemoteGenerator
from shared.providers.remote import Refused, named_delay

try:  # google-genai 3.x sends through httpx2 when it is installed, else httpx
    import httpx2

    _TIMEOUTS: tuple[type[BaseException], ...] = (httpx.TimeoutException, httpx2.TimeoutException)
    _TRANSPORT: tuple[type[BaseException], ...] = (httpx.TransportError, httpx2.TransportError)
except ImportError:  # pragma: no cover - depends on the environment
    _TIMEOUTS = (httpx.TimeoutException,)
    _TRANSPORT = (httpx.TransportError,)

_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


class GeminiGenerator(RemoteGenerator):
    name = "gemini"
    who = "Gemini"
    timeouts, unreachable = _TIMEOUTS, _TRANSPORT

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
            # (on 408/429/5xx) as the default: pin 1 so the base's retry (remote.py) is the only one.
            retry_options=types.HttpRetryOptions(attempts=1),
        )
        if self.base_url:
            options.base_url = self.base_url
        # vertexai=False: the key is a Gemini API key whatever GOOGLE_GENAI_USE_VERTEXAI says.
        return genai.Client(api_key=self._api_key, vertexai=False, http_options=options)

    def expand(self, canvas: Image.Image, prompt: str, deadline: float | None = None) -> Image.Image:
        client = self._get_client()
        contents: list[Any] = [types.Part.from_bytes(data=self.encode_canvas(canvas), mime_type="image/png"), prompt]
        config = types.GenerateContentConfig(response_modalities=["IMAGE"])
        response = self.call(lambda: self._generate(client, contents, config), deadline)
        return self.normalised(self.image(_first_image_data(response)))

    def _generate(self, client: genai.Client, contents: list[Any],
                  config: types.GenerateContentConfig) -> types.GenerateContentResponse:
        try:
            return client.models.generate_content(model=self.model, contents=contents, config=config)
        except genai_errors.APIError as exc:
            message = (exc.message or "").strip()[:200]
            raise Refused(exc.code or 0, message, _named_delay(exc), exc.status or "") from None
        except pydantic.ValidationError as exc:  # the SDK decodes inline data while parsing the answer
            if any("data" in error["loc"] for error in exc.errors()):
                raise self.broken() from None
            raise self.malformed() from None


def _named_delay(exc: genai_errors.APIError) -> float | None:
    """The wait a 429 asks for: RetryInfo.retryDelay ("7s") in the error details, else the headers'."""
    body = exc.details[0] if isinstance(exc.details, list) and exc.details else exc.details
    error = body.get("error", body) if isinstance(body, dict) else {}
    for detail in error.get("details", []) if isinstance(error, dict) else []:
        if isinstance(detail, dict) and detail.get("@type") == _RETRY_INFO:
            match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)s\s*", str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return named_delay(getattr(exc.response, "headers", None) or {})


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
