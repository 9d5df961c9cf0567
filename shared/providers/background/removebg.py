"""remove.bg as a background provider: the photo goes up as JPEG, the cut-out's alpha is the mask.

Every remote failure is a ProviderFailed, so a chain hands the photo to its next provider; only a
missing key is a configuration error (ValueError at start). The key is sent as a header and never
appears in reasons or logs.
"""

from __future__ import annotations

import io

from PIL import Image

from shared.errors import ProviderFailed
from shared.providers.background.base import BackgroundRemover
from shared.providers.remote import HttpProvider

DEFAULT_URL = "https://api.remove.bg/v1.0/removebg"


def encode_jpeg(image: Image.Image) -> bytes:
    """Photos travel as JPEG q90: a fraction of PNG's bytes, and no visible loss for a mask."""
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


def alpha_mask(cutout: Image.Image, size: tuple[int, int], who: str) -> Image.Image:
    """The "L" alpha of a returned cut-out at `size`."""
    if "A" in cutout.getbands():
        mask = cutout.getchannel("A")
    elif cutout.mode == "L":
        mask = cutout  # some services answer the mask itself
    else:
        raise ProviderFailed(f"{who} returned an image without transparency")
    if mask.size != size:  # e.g. remove.bg's size=auto caps the resolution
        mask = mask.resize(size, Image.Resampling.BILINEAR)
    return mask


class RemoveBgRemover(BackgroundRemover, HttpProvider):
    name = "removebg"
    who = "remove.bg"

    def __init__(self, api_key: str, url: str = DEFAULT_URL, timeout_s: float = 30.0) -> None:
        super().__init__(timeout_s, headers={"X-Api-Key": api_key}, api_key=api_key)
        self.url = url

    @classmethod
    def from_settings(cls, settings) -> "RemoveBgRemover":
        key = settings.removebg_api_key.get_secret_value().strip() if settings.removebg_api_key else ""
        if not key:
            raise ValueError("CLOSET_REMOVEBG_API_KEY is not set; the removebg background provider needs it")
        return cls(key, settings.removebg_url, settings.provider_timeout_s)

    def mask(self, image: Image.Image) -> Image.Image:
        files = {"image_file": ("photo.jpg", encode_jpeg(image), "image/jpeg")}
        response = self.call(lambda: self.send("POST", self.url, files=files, data={"size": "auto", "format": "png"}))
        return alpha_mask(self.image(response.content), image.size, self.who)
