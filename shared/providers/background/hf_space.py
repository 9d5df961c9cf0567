"""The app's Gradio Space running rembg, as a background provider.

It speaks Gradio's documented HTTP API with httpx rather than `gradio_client`: the client's start-up
handshake (config, API info, queue/join SSE with session hashes, heartbeats) is impractical to fake
on a local port, while the documented upload -> call -> SSE -> file routes are three plain requests.
"""

from __future__ import annotations

import json
import logging
import time

import httpx
from PIL import Image

from shared.errors import ProviderFailed
from shared.providers.background.base import BackgroundRemover
from shared.providers.background.removebg import alpha_mask, encode_jpeg
from shared.providers.remote import HttpProvider

log = logging.getLogger(__name__)


def space_url(space: str) -> str:
    """A full URL as given; "owner/name" as the Space's own host (https://owner-name.hf.space)."""
    space = space.strip().rstrip("/")
    if space.startswith(("http://", "https://")):
        return space
    host = space.lower().replace("/", "-").replace("_", "-").replace(".", "-")
    return f"https://{host}.hf.space"


class HfSpaceRemover(BackgroundRemover, HttpProvider):
    name = "hf-space"
    who = "hf-space"

    def __init__(self, space: str, token: str | None = None, timeout_s: float = 30.0,
                 api_name: str = "/predict", api_prefix: str = "/gradio_api") -> None:
        super().__init__(timeout_s, api_key=token or "")  # the client keeps the TLS connection to the Space
        self.base = space_url(space)
        prefix = api_prefix.strip("/")  # "gradio_api" since Gradio 5; "" for a Gradio 4 Space
        self.api = f"{self.base}/{prefix}" if prefix else self.base
        self.api_name = api_name.strip("/")
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}

    @classmethod
    def from_settings(cls, settings) -> "HfSpaceRemover":
        if not settings.hf_space:
            raise ValueError("CLOSET_HF_SPACE is not set; the hf-space background provider needs it")
        token = settings.hf_token.get_secret_value() if settings.hf_token else None
        return cls(settings.hf_space, token, settings.provider_timeout_s)

    def mask(self, image: Image.Image) -> Image.Image:
        return alpha_mask(self.image(self.call(lambda: self._cutout(image))), image.size, self.who)

    def _cutout(self, image: Image.Image) -> bytes:
        deadline = time.monotonic() + self.timeout_s  # heartbeats must not keep a stuck job alive
        with self.reading():  # JSON that is not what Gradio answers
            photo = {"files": ("photo.jpg", encode_jpeg(image), "image/jpeg")}
            path = self.send("POST", f"{self.api}/upload", files=photo, headers=self._auth).json()[0]
            file_data = {"path": path, "orig_name": "photo.jpg", "meta": {"_type": "gradio.FileData"}}
            call = self.send("POST", f"{self.api}/call/{self.api_name}", json={"data": [file_data]}, headers=self._auth)
            result = self._await_result(f"{self.api}/call/{self.api_name}/{call.json()['event_id']}", deadline)
            if not isinstance(result, list) or not result or not isinstance(result[0], dict):
                raise ProviderFailed(f"{self.who} answered an unexpected result")
            url = result[0].get("url") or f"{self.api}/file={result[0]['path']}"
        # The token only goes to the Space itself, never to a file host elsewhere.
        return self.send("GET", url, headers=self._auth if url.startswith(self.base + "/") else None).content

    def _await_result(self, url: str, deadline: float) -> object:
        """Reads the job's SSE stream until `event: complete` (its data line is the output list)."""
        with self._client.stream("GET", url, headers=self._auth) as response:
            self.check(response)
            event = ""
            for line in response.iter_lines():
                if time.monotonic() > deadline:
                    raise self.timed_out()
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "complete":
                    return json.loads(line[5:])
                elif line.startswith("data:") and event == "error":
                    detail = json.loads(line[5:] or "null")  # null unless the Space shows errors
                    raise ProviderFailed(f"{self.who} failed to process the photo" + (f": {detail}" if detail else ""))
        raise ProviderFailed(f"{self.who} closed the result stream without a result")

    def warm_up(self) -> None:
        """Wakes a sleeping Space early; a failure here is only logged, the first photo will retry."""
        try:
            self._client.get(f"{self.base}/config", headers=self._auth).raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("hf-space warm-up ping to %s failed: %s", self.base, type(exc).__name__)
