"""A fake Gemini API (generateContent) on 127.0.0.1 for the gemini generator's tests.

It answers with a real transformation of the image it received (its white margin filled by
edge-extension of the garment), so a test can tell that the canvas travelled. Failures are
scripted per request with `fail_next(...)`; once the script is used up it answers normally.
"""

from __future__ import annotations

import base64
import io
import json
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image

from tests.fakes.http import FakeService, Reply, Request, json_reply

_PATH = re.compile(r"^/(v1|v1beta)/models/([^/:]+):generateContent$")

# What fail_next understands; anything else is a test bug.
BEHAVIOURS = (
    "rate_limit",
    "rate_limit_header",
    "server_error",
    "text_only",
    "safety",
    "blocked",
    "garbage",
    "broken",
    "slow",
)


def extend_edges(image: Image.Image, white: int = 235) -> Image.Image:
    """Fill the near-white margin around the content with the nearest content colours: each row
    extends its outermost non-white pixels sideways, then the first/last such rows extend up/down."""
    pixels = np.asarray(image.convert("RGB")).copy()
    content = (pixels < white).any(axis=2)
    rows = np.flatnonzero(content.any(axis=1))
    if rows.size == 0:
        return Image.fromarray(pixels)
    for y in rows:
        xs = np.flatnonzero(content[y])
        pixels[y, : xs[0]] = pixels[y, xs[0]]
        pixels[y, xs[-1] + 1 :] = pixels[y, xs[-1]]
    pixels[: rows[0]] = pixels[rows[0]]
    pixels[rows[-1] + 1 :] = pixels[rows[-1]]
    return Image.fromarray(pixels)


def _b64decode(text: str) -> bytes:
    # The SDK sends bytes URL-safe base64 encoded; the real API accepts both alphabets.
    return base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class GeminiCall:
    """One generateContent request as the fake understood it."""

    api_version: str
    model: str
    api_key: str | None
    prompt: str
    image: Image.Image | None
    image_mime: str | None
    modalities: list[str]


class FakeGemini(FakeService):
    modes = BEHAVIOURS

    def __init__(self, api_key: str = "fake-gemini-key", retry_delay: str = "0.1s", slow_s: float = 10.0) -> None:
        super().__init__()
        self.api_key = api_key
        self.retry_delay = retry_delay  # RetryInfo.retryDelay of "rate_limit"; also Retry-After of "rate_limit_header"
        self.slow_s = slow_s  # how long "slow" waits before answering
        self.calls: list[GeminiCall] = []

    def _handle(self, request: Request) -> Reply:
        match = _PATH.match(request.path)
        if request.method != "POST" or match is None:
            return _error(404, "NOT_FOUND", f"no such method {request.method} {request.path}")
        if request.headers.get("x-goog-api-key") != self.api_key:
            return _error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
        call = _parse(match.group(1), match.group(2), request)
        self.calls.append(call)
        behaviour = self.next_failure() or "ok"
        if behaviour == "rate_limit":
            details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": self.retry_delay}]
            return _error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", details)
        if behaviour == "rate_limit_header":
            reply = _error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).")
            reply.headers["Retry-After"] = self.retry_delay.removesuffix("s")
            return reply
        if behaviour == "server_error":
            return _error(500, "INTERNAL", "An internal error has occurred.")
        if behaviour == "text_only":
            parts = [{"text": "I can only describe this garment, not draw it."}]
            return _answer({"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0})
        if behaviour == "safety":
            return _answer({"finishReason": "SAFETY", "index": 0})
        if behaviour == "blocked":  # the prompt itself refused: no candidates at all
            return json_reply(200, {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "modelVersion": "fake"})
        if call.image is None:
            return _error(400, "INVALID_ARGUMENT", "the request carries no image")
        buffer = io.BytesIO()
        extend_edges(call.image).save(buffer, format="PNG")
        data = base64.b64encode(buffer.getvalue()).decode()
        if behaviour == "garbage":  # not even base64
            data = "this is %%% not base64 ***"
        elif behaviour == "broken":  # base64 of a PNG cut short
            data = base64.b64encode(buffer.getvalue()[:200]).decode()
        parts = [{"inlineData": {"mimeType": "image/png", "data": data}}]
        reply = _answer({"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0})
        if behaviour == "slow":
            reply.delay_s = self.slow_s
        return reply


def _parse(version: str, model: str, request: Request) -> GeminiCall:
    body = json.loads(request.body or b"{}")
    prompt: list[str] = []
    image = mime = None
    for content in body.get("contents", []):
        for part in content.get("parts", []):
            blob = part.get("inlineData") or part.get("inline_data")
            if blob and image is None:
                mime = blob.get("mimeType") or blob.get("mime_type")
                image = Image.open(io.BytesIO(_b64decode(blob["data"])))
                image.load()
            if "text" in part:
                prompt.append(part["text"])
    config = body.get("generationConfig") or body.get("generation_config") or {}
    modalities = config.get("responseModalities") or config.get("response_modalities") or []
    return GeminiCall(version, model, request.headers.get("x-goog-api-key"), "\n".join(prompt), image, mime, modalities)


def _answer(candidate: dict) -> Reply:
    return json_reply(200, {"candidates": [candidate], "modelVersion": "fake", "usageMetadata": {"totalTokenCount": 1}})


def _error(code: int, status: str, message: str, details: list | None = None) -> Reply:
    error: dict = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return json_reply(code, {"error": error})
