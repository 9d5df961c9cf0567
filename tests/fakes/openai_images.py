"""A fake OpenAI image edit API (POST /v1/images/edits) on 127.0.0.1 for the openai generator's tests.

Like the Gemini fake it answers with the received image's white margin filled by edge-extension,
so a test can tell that the canvas travelled; failures are scripted per request with `fail_next`.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

from PIL import Image

from tests.fakes.gemini import extend_edges
from tests.fakes.http import FakeService, Reply, Request, json_reply, parse_multipart

BEHAVIOURS = ("rate_limit", "rate_limit_ms", "server_error", "no_image", "moderation", "garbage", "broken", "slow")


@dataclass(frozen=True)
class EditCall:
    """One images/edits request as the fake understood it."""

    authorization: str | None
    model: str | None
    prompt: str | None
    size: str | None
    image: Image.Image | None
    image_filename: str | None
    image_type: str | None


class FakeOpenAIImages(FakeService):
    modes = BEHAVIOURS
    path = "/v1"  # the base URL to give the SDK (it appends /images/edits)

    def __init__(self, api_key: str = "sk-fake-openai-key", retry_after_s: float = 0.1, slow_s: float = 10.0) -> None:
        super().__init__()
        self.api_key = api_key
        self.retry_after_s = retry_after_s  # Retry-After of "rate_limit" (retry-after-ms of "rate_limit_ms")
        self.slow_s = slow_s
        self.calls: list[EditCall] = []

    def _handle(self, request: Request) -> Reply:
        if request.method != "POST" or request.path != "/v1/images/edits":
            return _error(404, "invalid_request_error", None, f"Invalid URL ({request.method} {request.path})")
        authorization = request.headers.get("authorization")
        if authorization != f"Bearer {self.api_key}":
            return _error(401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided.")
        fields = parse_multipart(request)
        image_part = fields.get("image") or fields.get("image[]")
        image = None
        if image_part is not None:
            image = Image.open(io.BytesIO(image_part.data))
            image.load()

        def text(name: str) -> str | None:
            return fields[name].data.decode() if name in fields else None

        call = EditCall(
            authorization,
            text("model"),
            text("prompt"),
            text("size"),
            image,
            image_part.filename if image_part else None,
            image_part.content_type if image_part else None,
        )
        self.calls.append(call)
        behaviour = self.next_failure() or "ok"
        if behaviour == "rate_limit":
            reply = _error(429, "requests", "rate_limit_exceeded", "Rate limit reached for images per minute.")
            reply.headers["retry-after"] = f"{self.retry_after_s:g}"
            return reply
        if behaviour == "rate_limit_ms":
            reply = _error(429, "requests", "rate_limit_exceeded", "Rate limit reached for images per minute.")
            reply.headers["retry-after-ms"] = f"{self.retry_after_s * 1000:g}"
            return reply
        if behaviour == "server_error":
            return _error(500, "server_error", None, "The server had an error while processing your request.")
        if behaviour == "moderation":  # how the real API refuses an edit on safety grounds
            return _error(
                400,
                "image_generation_user_error",
                "moderation_blocked",
                "Your request was rejected as a result of our safety system.",
            )
        if behaviour == "no_image":
            return _answer([])
        if image is None or call.prompt is None:
            return _error(400, "invalid_request_error", None, "image and prompt are required")
        buffer = io.BytesIO()
        extend_edges(image).save(buffer, format="PNG")
        data = base64.b64encode(buffer.getvalue()).decode()
        if behaviour == "garbage":  # not even base64
            data = "this is %%% not base64 ***"
        elif behaviour == "broken":  # base64 of a PNG cut short
            data = base64.b64encode(buffer.getvalue()[:200]).decode()
        reply = _answer([{"b64_json": data}])
        if behaviour == "slow":
            reply.delay_s = self.slow_s
        return reply


def _answer(data: list[dict]) -> Reply:
    usage = {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}
    return json_reply(200, {"created": 0, "data": data, "usage": usage})


def _error(status: int, kind: str, code: str | None, message: str) -> Reply:
    return json_reply(status, {"error": {"message": message, "type": kind, "param": None, "code": code}})
