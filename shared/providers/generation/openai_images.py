"""OpenAI's image edit API (the roadmap's "option B") for expand, through the official SDK: the
canvas as a PNG upload plus the prompt in, the base64 image of the answer out. Every failure becomes
ProviderFailed with a reason a person can read."""

from __future__ import annotations

import openai
from PIL import Image

from shared.errors import ProviderFailed
from shared.providers.generation.base import RemoteGenerator
from shared.providers.remote import Refused, named_delay

# The codes of an edit refused on safety grounds: a refusal of the image, not of the request.
MODERATION = ("moderation_blocked", "content_policy_violation")


class OpenAIImageEditGenerator(RemoteGenerator):
    name = "openai"
    who = "OpenAI"
    timeouts, unreachable = (openai.APITimeoutError,), (openai.APIConnectionError,)

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
        # max_retries=0: the SDK's own retries would multiply the wait; the base's retry is the only one.
        extra = {"base_url": self.base_url} if self.base_url else {}
        return openai.OpenAI(api_key=self._api_key, timeout=self.timeout_s, max_retries=0, **extra)

    def expand(self, canvas: Image.Image, prompt: str, deadline: float | None = None) -> Image.Image:
        client = self._get_client()
        upload = ("canvas.png", self.encode_canvas(canvas), "image/png")
        result = self.call(lambda: self._edit(client, upload, prompt), deadline)
        data = getattr(result, "data", None) or []
        encoded = data[0].b64_json if data else None
        if not encoded:
            raise ProviderFailed("OpenAI returned no image: the answer has no base64 image data")
        return self.normalised(self.image_b64(encoded))

    def _edit(self, client: openai.OpenAI, upload: tuple[str, bytes, str], prompt: str) -> object:
        try:
            return client.images.edit(model=self.model, image=upload, prompt=prompt, size=self.size, n=1)
        except openai.APIStatusError as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            message = str(body.get("message") or exc.message).strip()[:200]
            if body.get("code") in MODERATION:
                raise self.failure(f"OpenAI refused to edit the image ({body['code']}): {message}") from None
            raise Refused(exc.status_code, message, named_delay(exc.response.headers)) from None
        except openai.APIResponseValidationError:
            raise self.malformed() from None
