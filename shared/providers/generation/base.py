"""The generative interface used by expand: a garment on a white canvas in, a cleaned-up product
shot out; and the base of the remote providers (an API key, a model, one lazily built client)."""

from __future__ import annotations

import io
import threading
from abc import ABC, abstractmethod
from typing import Any

from PIL import Image

from shared.providers.remote import RemoteProvider, Wording


class Generator(ABC):
    name: str

    @classmethod
    @abstractmethod
    def from_settings(cls, settings) -> "Generator": ...

    @abstractmethod
    def expand(self, canvas: Image.Image, prompt: str, deadline: float | None = None) -> Image.Image:
        """The generated image. Raises ProviderFailed with a reason a person can read when the
        provider times out, refuses, or answers without an image. `deadline` (time.monotonic()):
        when the caller stops waiting; no retry is begun that would end after it."""

    def warm_up(self) -> None:
        """Create the client once per instance."""


class RemoteGenerator(Generator, RemoteProvider):
    """An HTTP API behind an SDK client: built once, reused, and the key kept out of every message."""

    who = "The generative provider"
    # A failed generation is final for its garment (expand keeps the crop), so a 429 or a brief
    # outage is worth one more try; the SDKs' own retries are off, so this is the only one.
    attempts = 2
    wording = Wording(rate_limited="{who} is rate limited ({status})", failed="{who} failed on its side ({status})",
                      refused="{who} rejected the request ({status})",
                      timed_out="{who} did not answer within {timeout_s:g} s")

    def __init__(self, api_key: str, model: str, *, base_url: str | None = None, timeout_s: float = 60.0,
                 max_retry_wait_s: float = 5.0) -> None:
        self._api_key = api_key
        self.model = model
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.max_retry_wait_s = max_retry_wait_s
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # no key in reprs, tracebacks or logs
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"

    @abstractmethod
    def _create_client(self) -> Any: ...

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._create_client()
            return self._client

    def warm_up(self) -> None:
        self._get_client()

    @staticmethod
    def encode_canvas(canvas: Image.Image) -> bytes:
        buffer = io.BytesIO()
        canvas.save(buffer, format="PNG")
        return buffer.getvalue()

    @staticmethod
    def normalised(image: Image.Image) -> Image.Image:
        """The answer's image as RGB, or RGBA where it has transparency."""
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
        return image
