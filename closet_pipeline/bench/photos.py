"""The benchmark's photos: phone-sized files made from the CC0 examples, and the expand-policy set.

A phone stores a portrait photo as a landscape sensor image plus an EXIF orientation; it writes
JPEG (about quality 90, 4:2:0) or HEIC. The examples are 400 px wide, so they are upscaled into the
4:3 frame (portrait or landscape as the source is; aspect kept, the margin filled with a blurred
copy of the photo), given sensor-like noise (JPEG size and decode cost depend on it; a smooth
upscale would compress unrealistically well), and stored as a phone does: JPEGs stored rotated with
EXIF orientation 6 or 8, or upright with orientation 1, and one HEIC (pillow_heif, upright).
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps

# Per source photo, in order: the format and the EXIF orientation (cycled over the JPEG kinds after
# the first four; one HEIC only). The frame is portrait or landscape as the source is: filling a 4:3
# landscape frame with a tall garment shot leaves IS-Net nothing it recognises (tried: pants.jpg).
KINDS = (("jpeg", 6), ("jpeg", 1), ("jpeg", 8), ("heic", 1))
# What a displayed orientation needs on disk: the inverse of what EXIF tells a viewer to apply.
_STORE_TRANSPOSE = {1: None, 3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
JPEG_QUALITY = 90
HEIC_QUALITY = 60  # about 2.8 MB at 12 MP with the noise, as a phone's HEIC
NOISE = 8  # +- levels of uniform noise (std about 5): 12 MP JPEGs of 2-3 MB, as phones write them
# x265's default preset takes a minute for 12 MP on two cores; ultrafast a few seconds.
HEIC_ENCODER = {"preset": "ultrafast"}
RECIPE = f"v3 q{JPEG_QUALITY} heic{HEIC_QUALITY} noise{NOISE}"  # part of the cache key of generated photos


@dataclass(frozen=True)
class PhonePhoto:
    path: Path
    source: str  # the example it was made from
    megapixels: int
    fmt: str  # jpeg or heic
    orientation: int  # the EXIF orientation stored
    displayed: tuple[int, int]  # width, height as a viewer shows it

    @property
    def name(self) -> str:
        return self.path.name

    def describe(self) -> str:
        w, h = self.displayed
        turn = f", stored rotated (EXIF orientation {self.orientation})" if self.orientation != 1 else ""
        return f"{self.source} -> {self.fmt.upper()} {w}x{h}{turn}"


def sides(megapixels: float, portrait: bool) -> tuple[int, int]:
    """A 4:3 frame of about `megapixels`: 12 -> 4000x3000 (or 3000x4000 portrait)."""
    long_side = round(math.sqrt(megapixels * 1e6 * 4 / 3) / 8) * 8
    short_side = long_side * 3 // 4
    return (short_side, long_side) if portrait else (long_side, short_side)


def kind_for(index: int) -> tuple[str, int]:
    if index < len(KINDS):
        return KINDS[index]
    jpeg_kinds = [k for k in KINDS if k[0] == "jpeg"]
    return jpeg_kinds[index % len(jpeg_kinds)]


def displayed_image(source: Path, size: tuple[int, int], seed: int) -> Image.Image:
    """The picture as a viewer shows it: the whole example scaled into `size` (a phone user frames the
    whole garment; cropping it to 4:3 can cut it off) over a blurred, enlarged copy of itself that
    fills the rest of the frame, with sensor-like noise."""
    with Image.open(source) as opened:
        upright = ImageOps.exif_transpose(opened).convert("RGB")
    scale = min(size[0] / upright.width, size[1] / upright.height)
    inner = upright.resize((round(upright.width * scale), round(upright.height * scale)), Image.Resampling.BICUBIC)
    image = ImageOps.fit(upright, (size[0] // 8, size[1] // 8), Image.Resampling.BILINEAR)
    image = image.filter(ImageFilter.GaussianBlur(6)).resize(size, Image.Resampling.BILINEAR)
    image.paste(inner, ((size[0] - inner.width) // 2, (size[1] - inner.height) // 2))
    pixels = np.asarray(image, dtype=np.int16)
    noise = np.random.default_rng(seed).integers(-NOISE, NOISE + 1, size=pixels.shape, dtype=np.int8)
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8), "RGB")


def phone_bytes(image: Image.Image, fmt: str, orientation: int) -> bytes:
    """Encode a displayed picture as a phone stores it."""
    out = io.BytesIO()
    if fmt == "heic":
        import pillow_heif

        pillow_heif.from_pillow(image).save(out, quality=HEIC_QUALITY, enc_params=HEIC_ENCODER)
        return out.getvalue()
    exif = Image.Exif()
    exif[0x010F] = "ClosetConnect bench"  # Make
    exif[0x0110] = "12 MP phone"  # Model
    exif[0x0112] = orientation
    transpose = _STORE_TRANSPOSE[orientation]
    stored = image.transpose(transpose) if transpose is not None else image
    stored.save(out, "JPEG", quality=JPEG_QUALITY, exif=exif)
    return out.getvalue()


def make_phone_photos(sources: list[Path], megapixels: int, out_dir: Path, *, heic: bool = True) -> list[PhonePhoto]:
    """One phone photo per source at `megapixels`, kept under out_dir (a cache: a file already made
    from the same source bytes by the same recipe is reused; making one costs seconds)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    photos = []
    for index, source in enumerate(sources):
        fmt, orientation = kind_for(index)
        if fmt == "heic" and not heic:
            fmt, orientation = "jpeg", 1
        with Image.open(source) as opened:
            width, height = ImageOps.exif_transpose(opened).size
        size = sides(megapixels, portrait=height >= width)
        recipe = f"{RECIPE} {index} {fmt} {orientation} {size}".encode()
        key = hashlib.sha256(recipe + source.read_bytes()).hexdigest()[:12]
        path = out_dir / f"{megapixels}mp-{source.stem}-{key}.{'heic' if fmt == 'heic' else 'jpg'}"
        if not path.is_file():
            data = phone_bytes(displayed_image(source, size, seed=index), fmt, orientation)
            partial = path.with_suffix(".partial")
            partial.write_bytes(data)
            partial.replace(path)
        photos.append(PhonePhoto(path, source.name, megapixels, fmt, orientation, size))
    return photos


def unique_variant(data: bytes, tag: str) -> bytes:
    """The same picture with other bytes (so the result cache cannot serve it): a JPEG comment after
    the APPn segments, or a top-level `free` box at the end of a HEIF file."""
    payload = f"closet-bench {tag}".encode()
    if data[:2] == b"\xff\xd8":
        offset = 2
        while data[offset] == 0xFF and 0xE0 <= data[offset + 1] <= 0xEF:  # APP0..APP15
            offset += 2 + struct.unpack(">H", data[offset + 2:offset + 4])[0]
        comment = b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload
        return data[:offset] + comment + data[offset:]
    if data[4:8] == b"ftyp":
        return data + struct.pack(">I", 8 + len(payload)) + b"free" + payload
    raise ValueError("unique_variant handles JPEG and HEIF only")


def expand_policy_photos(shared_fixtures: Path, fallbacks: list[Path]) -> tuple[list[Path], str]:
    """The photos to judge the expand policy on, and which set they are."""
    clothing = shared_fixtures / "clothing"
    photos = sorted(clothing.glob("*.jpg")) if clothing.is_dir() else []
    if photos:
        return photos, f"{len(photos)} photos of {clothing} (the team's Clothing fixtures, 400 px wide)"
    seen, chosen = set(), []
    for folder in fallbacks:
        for path in sorted(folder.glob("*.jpg")):
            digest = path.read_bytes()
            if digest not in seen:  # tests/data/photos repeats some examples
                seen.add(digest)
                chosen.append(path)
    names = " and ".join(str(f) for f in fallbacks)
    return chosen, f"{len(chosen)} photos of {names} ({clothing} is not on this machine)"
