"""A fake of the app's SegFormer API (POST /segment, multipart `file`) on a local port.

Each connected blob of the uploaded cut-out's alpha becomes one detected item, labelled in scan
order from the scripted `labels` (the last label repeats); `extra_items` are appended as given.
Failures: fail_next(503 / 429 / TIMEOUT / GARBAGE (JSON that is not JSON) / BAD_IMAGE / "error").
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image
from scipy import ndimage

from tests.fakes.http import GARBAGE, TIMEOUT, FakeService, Reply, Request, json_reply, parse_multipart

BAD_IMAGE = "bad-image"  # an item whose image_base64 is not an image
STATUS_ERROR = "error"  # {"status": "error", "detected_items": []}


def png_base64(image: Image.Image) -> str:
    out = io.BytesIO()
    image.save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def blob_items(cutout: Image.Image, labels: list[str]) -> list[dict]:
    alpha = np.asarray(cutout.getchannel("A")) > 127
    blobs, count = ndimage.label(alpha)
    items = []
    for index, box in enumerate(ndimage.find_objects(blobs)):
        rows, cols = box
        only = (blobs[box] == index + 1).astype(np.uint8) * 255
        crop = cutout.crop((cols.start, rows.start, cols.stop, rows.stop))
        crop.putalpha(Image.fromarray(only))
        items.append({
            "label": labels[min(index, len(labels) - 1)],
            "bbox": [cols.start, rows.start, cols.stop, rows.stop],
            "image_base64": png_base64(crop),
            "area_pixels": int(only.astype(bool).sum()),
        })
    return items


class FakeSegformer(FakeService):
    modes, statuses = (TIMEOUT, GARBAGE, BAD_IMAGE, STATUS_ERROR), True

    def __init__(self, labels: list[str] | None = None, hang_s: float = 5.0) -> None:
        super().__init__()
        self.labels = labels or ["upper-clothes"]
        self.extra_items: list[dict] = []
        self.hang_s = hang_s
        self.uploads: list[Image.Image] = []

    def _handle(self, request: Request) -> Reply:
        if request.method != "POST" or request.path != "/segment":
            return json_reply(404, {"detail": "Not Found"})
        mode = self.next_failure()
        if isinstance(mode, int):
            return json_reply(mode, {"detail": "model overloaded"})
        if mode == TIMEOUT:
            return Reply(200, b"", "application/json", delay_s=self.hang_s)
        if mode == GARBAGE:
            return Reply(200, b"<html>Bad gateway</html>", "application/json")
        if mode == STATUS_ERROR:
            return json_reply(200, {"status": "error", "message": "no person found", "detected_items": []})
        cutout = Image.open(io.BytesIO(parse_multipart(request)["file"].data))
        cutout.load()
        self.uploads.append(cutout)
        items = blob_items(cutout.convert("RGBA"), self.labels) + self.extra_items
        if mode == BAD_IMAGE and items:
            items[0]["image_base64"] = base64.b64encode(b"not an image").decode()
        return json_reply(200, {"status": "success", "detected_items": items})
