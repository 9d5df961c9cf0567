"""remove.bg as a background provider: the photo goes up as JPEG, the cut-out's alpha is the mask.

Every remote failure is a ProviderFailed, so a chain hands the photo to its next provider; only a
missing key is a configuration error (ValueError at start). The key is sent as a header and never
appears in reasons or logs.
"""

from __future__ import annotations

import io

import httpx
from PIL import Image

from shared.errors import ProviderFailed
from shared.providers.background.base import BackgroundRemover
from shared.providers.remote import status_failure

DEFAULT_URL = "https://api.remove.bg/v1.0/removebg"


def encode_jpeg(image: Image.Image) -> bytes:
    """Photos travel as JPEG q90: a fraction of PNG's bytes, and no visible loss for a mask."""
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


def alpha_mask(content: bytes, size: tuple[int, int], who: str) -> Image.Image:
    """The "L" alpha of a returned cut-out at `size`; a body that is no image is the provider's fault."""
    try:
        with Image.open(io.BytesIO(content)) as cutout:
            cutout.load()
            if "A" in cutout.getbands():
                mask = cutout.getchannel("A")
            elif cutout.mode == "L":
                mask = cutout.copy()  # some services answer the mask itself
            else:
                raise ProviderFailed(f"{who} returned an image without transparency")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ProviderFailed(f"{who} returned a broken image") from None
    if mask.size != size:  # e.g. remove.bg's size=auto caps the resolution
        mask = mask.resize(size, Image.Resampling.BILINEAR)
    return mask


class RemoveBgRemover(BackgroundRemover):
    name = "removebg"

    def __init__(self, api_key: str, url: str = DEFAULT_URL, timeout_s: float = 30.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        # One pooled client per instance: connections are reused across photos of a warm function.
        self._client = httpx.Client(headers={"X-Api-Key": api_key}, timeout=timeout_s)

    @classmethod
    def from_settings(cls, settings) -> "RemoveBgRemover":
        key = settings.removebg_api_key.get_secret_value().strip() if settings.removebg_api_key else ""
        if not key:
            raise ValueError("CLOSET_REMOVEBG_API_KEY is not set; the removebg background provider needs it")
        return cls(key, settings.removebg_url, settings.provider_timeout_s)

    def mask(self, image: Image.Image) -> Image.Image:
        files = {"image_file": ("photo.jpg", encode_jpeg(image), "image/jpeg")}
        try:
            response = self._client.post(self.url, files=files, data={"size": "auto", "format": "png"})
        except httpx.TimeoutException:
            raise ProviderFailed(f"remove.bg timed out after {self.timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise ProviderFailed(f"remove.bg could not be reached ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise status_failure(response, "remove.bg")
        return alpha_mask(response.content, image.size, "remove.bg")

    def close(self) -> None:
        self._client.close()
