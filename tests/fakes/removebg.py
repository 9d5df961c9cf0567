"""A fake remove.bg API (POST /v1.0/removebg) on a local port.

It checks X-Api-Key and the multipart `image_file`, and answers a PNG cut-out whose alpha is a real
(if crude) foreground mask of the uploaded photo: pixels far from the corners' colour. Tests can
compare a provider's mask with `masks[-1]`, and script failures with `fail_next`.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from tests.fakes.http import GARBAGE, TIMEOUT, FakeService, Reply, Request, json_reply, parse_multipart

PATH = "/v1.0/removebg"
ERROR_TITLES = {400: "Could not identify foreground in image.", 402: "Insufficient credits", 403: "Forbidden"}


def corner_mask(image: Image.Image, threshold: float = 60.0) -> np.ndarray:
    """Foreground = colour farther than `threshold` from the median of the four corner pixels."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    corners = np.stack([rgb[0, 0], rgb[0, -1], rgb[-1, 0], rgb[-1, -1]])
    distance = np.linalg.norm(rgb - np.median(corners, axis=0), axis=2)
    return distance > threshold


def cutout_png(image: Image.Image, mask: np.ndarray) -> bytes:
    rgba = image.convert("RGBA")
    rgba.putalpha(Image.fromarray(mask.astype(np.uint8) * 255))
    out = io.BytesIO()
    rgba.save(out, "PNG")
    return out.getvalue()


class FakeRemoveBg(FakeService):
    """Failures: statuses (503, 429, 402...), TIMEOUT, GARBAGE."""

    modes, statuses, path = (TIMEOUT, GARBAGE), True, PATH

    def __init__(self, api_key: str = "test-removebg-key", scale: float = 1.0, hang_s: float = 5.0) -> None:
        super().__init__()
        self.api_key = api_key
        self.scale = scale  # != 1 answers another size, as remove.bg's size=auto may
        self.hang_s = hang_s
        self.masks: list[np.ndarray] = []  # the masks served, at the uploaded photo's size
        self.uploads: list[Image.Image] = []

    def _handle(self, request: Request) -> Reply:
        if request.method != "POST" or request.path != PATH:
            return json_reply(404, {"errors": [{"title": "Not found"}]})
        if request.headers.get("x-api-key") != self.api_key:
            return json_reply(403, {"errors": [{"title": "API Key invalid", "code": "auth_failed"}]})
        mode = self.next_failure()
        if mode == TIMEOUT:
            return Reply(200, b"", "image/png", delay_s=self.hang_s)
        if mode == GARBAGE:
            return Reply(200, b"\x89PNG\r\n\x1a\nnot really a png", "image/png")
        if isinstance(mode, int):
            title = ERROR_TITLES.get(mode, "Service unavailable" if mode >= 500 else "Rate limit exceeded")
            return json_reply(mode, {"errors": [{"title": title}]})
        fields = parse_multipart(request)
        if "image_file" not in fields:
            return json_reply(400, {"errors": [{"title": "No image given."}]})
        image = Image.open(io.BytesIO(fields["image_file"].data))
        image.load()
        self.uploads.append(image)
        mask = corner_mask(image)
        self.masks.append(mask)
        cutout, mask_image = image, mask
        if self.scale != 1.0:
            size = (max(1, round(image.width * self.scale)), max(1, round(image.height * self.scale)))
            cutout = image.resize(size)
            mask_image = np.asarray(Image.fromarray(mask).resize(size, Image.Resampling.NEAREST))
        return Reply(200, cutout_png(cutout, mask_image), "image/png")
