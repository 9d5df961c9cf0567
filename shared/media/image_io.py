"""Decoding uploads safely and encoding outputs.

`normalise` turns whatever a phone sends into an upright RGB working image: the type is sniffed
from the bytes, limits are checked on the header before any pixel is decoded, JPEGs decode
straight at reduced scale (draft mode), colours are converted to sRGB and all metadata (EXIF, GPS)
is left behind.
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from dataclasses import dataclass

import numpy as np
import pillow_heif
from PIL import ExifTags, Image, ImageCms, UnidentifiedImageError

from shared.errors import (
    CorruptImage,
    EmptyFile,
    FileTooLarge,
    ImageTooLarge,
    ImageTooSmall,
    NoGarmentFound,
    UnsupportedFormat,
)

from shared.formats import PILLOW_FORMATS
from shared.formats import spoken as spoken_formats

log = logging.getLogger(__name__)

pillow_heif.register_heif_opener()  # HEIC/HEIF, whatever the file is named
ACCEPTED_FORMATS = PILLOW_FORMATS  # shared/formats.py
_SRGB = ImageCms.createProfile("sRGB")

# Recognisable non-images, so the refusal can say what the file looked like.
_SIGNATURES = ((b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"), (b"<svg", "an SVG drawing"),
               (b"<?xml", "an XML/SVG file"), (b"<!doctype html", "a web page"), (b"<html", "a web page"))


# The start of every format we accept: such a file that Pillow cannot open is damaged, not foreign.
_ACCEPTED_SIGNATURE = re.compile(
    rb"^(\x89PNG\r\n\x1a\n|\xff\xd8\xff|GIF8[79]a|RIFF....WEBP|....ftyp(heic|heix|heim|heis|hevc|hevx|mif1|msf1|avif|avis))",
    re.DOTALL,
)
# Below this spread of pixel values a photo is one flat colour: nothing to cut out.
FLAT_STDDEV = 2.0


@dataclass(frozen=True)
class NormalisedImage:
    image: Image.Image  # RGB, upright, longest side <= the working size
    source_format: str
    source_size: tuple[int, int]  # as stored, before orientation


def describe_unsupported(data: bytes) -> str:
    head = data[:256].lstrip().lower()
    for signature, name in _SIGNATURES:
        if head.startswith(signature.lower()):
            return name
    try:
        data[:1024].decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return "not an image format we read"


def check_byte_size(size: int, max_bytes: int) -> None:
    """FileTooLarge past the limit (ingest checks the object's size before downloading it)."""
    if size > max_bytes:
        raise FileTooLarge(f"The file is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB.")


def normalise(data: bytes, *, max_bytes: int, max_pixels: int, min_side: int, max_side: int) -> NormalisedImage:
    if not data:
        raise EmptyFile()
    check_byte_size(len(data), max_bytes)
    image = _open(data)
    width, height = image.size  # from the header: nothing is decoded yet
    if width * height > max_pixels:
        raise ImageTooLarge(f"The image is {width}x{height} pixels; the limit is {max_pixels / 1e6:.0f} megapixels.")
    if min(width, height) < min_side:
        raise ImageTooSmall(f"The image is {width}x{height} pixels; each side needs at least {min_side}.")
    source_format = image.format or "unknown"
    image = _decode(image, max_side)
    if float(np.asarray(image.resize((64, 64))).std()) < FLAT_STDDEV:
        raise NoGarmentFound("The photo is a single flat colour: no garment is in view.")
    image.info.clear()  # nothing of the original's metadata travels on
    return NormalisedImage(image, source_format, (width, height))


def _open(data: bytes) -> Image.Image:
    """The image with its header read (nothing decoded yet), or the refusal that says why not."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        if _ACCEPTED_SIGNATURE.match(data[:16]):
            raise CorruptImage("The image is damaged or incomplete and cannot be read.") from None
        raise UnsupportedFormat(
            f"The file is {describe_unsupported(data)}, not a supported photo. Upload a {spoken_formats()} image."
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge() from None
    except (OSError, SyntaxError, ValueError) as exc:
        log.info("unreadable image header: %s", exc)
        raise CorruptImage("The image's header is damaged, so it cannot be read.") from None


def _decode(image: Image.Image, max_side: int) -> Image.Image:
    """Decoded at most `max_side` on its longer side, upright, opaque RGB in sRGB."""
    width, height = image.size
    try:
        scale = min(1.0, max_side / max(width, height))
        target = (max(1, round(width * scale)), max(1, round(height * scale)))
        if image.format == "JPEG":
            image.draft("RGB" if image.mode != "CMYK" else None, target)  # decode at 1/2, 1/4 or 1/8 scale
        image.seek(0)  # animated GIF/WebP: the first frame
        image.load()
        icc = image.info.get("icc_profile")
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
        if max(image.size) >= 2 * max_side:
            # A big PNG/WebP/HEIC is decoded whole (only JPEG has draft mode): shrink it at once by an
            # integer box filter, before any full-size copy (flattening, rotating) is made.
            factor = max(image.size) // max_side
            try:
                image = _reduce(image, factor)
            except ValueError:  # a mode reduce() does not take (palette, 16-bit grey): convert first
                image = _reduce(_to_rgb(image), factor)
        if orientation in _TRANSPOSE:
            image = image.transpose(_TRANSPOSE[orientation])
        if "A" in image.getbands() and image.getchannel("A").getextrema()[1] == 0:
            raise NoGarmentFound("The image is fully transparent: there is nothing in it.")
        image = _to_rgb(image)
        if icc:
            image = _to_srgb(image, icc)
        if max(image.size) > max_side:
            image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        log.info("undecodable image: %s", exc)
        raise CorruptImage("The image is damaged or incomplete and cannot be read.") from None
    return image


def _reduce(image: Image.Image, factor: int) -> Image.Image:
    """Integer box reduction, a strip at a time: Image.reduce on a whole RGBA image first makes a
    full-size copy (200 MB more at 50 MP), which ingest's 512 MiB cannot afford."""
    width, height = image.size
    out = Image.new(image.mode, (-(-width // factor), -(-height // factor)))
    step = factor * 64
    for top in range(0, height, step):
        out.paste(image.crop((0, top, width, min(height, top + step))).reduce(factor), (0, top // factor))
    return out


# EXIF orientation -> the transpose that makes the photo upright (what ImageOps.exif_transpose does).
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any mode to RGB; transparency is flattened onto white, where garments are photographed."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        depth = 65535 if image.mode.startswith("I;16") or np.asarray(image).max() > 255 else 255
        levels = np.asarray(image, dtype=np.float32) * (255.0 / depth)
        image = Image.fromarray(np.clip(levels, 0, 255).astype(np.uint8), "L")
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("LA", "La", "PA", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        white = Image.new("RGB", image.size, (255, 255, 255))
        white.paste(image, mask=image.getchannel("A"))
        return white
    return image if image.mode == "RGB" else image.convert("RGB")


def _to_srgb(image: Image.Image, icc: bytes) -> Image.Image:
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(image, source, _SRGB, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image  # an unreadable profile: keep the pixels as they are


# -- encoding ------------------------------------------------------------------------------------
def encode(image: Image.Image, fmt: str, *, fast: bool = False) -> bytes:
    """PNG or WebP (lossless for cut-outs: edges matter). `fast` is for intermediates read once.
    PNG level 3 is a third of level 6's time for about 15 % more bytes: the better trade for a
    result the user is waiting for."""
    out = io.BytesIO()
    if fmt == "png":
        image.save(out, "PNG", compress_level=1 if fast else 3)
    elif fmt == "webp":
        image.save(out, "WEBP", lossless=True, quality=60 if fast else 80, method=0 if fast else 4)
    else:
        raise ValueError(f"unknown output format {fmt!r}")
    return out.getvalue()


def thumbnail_webp(image: Image.Image, side: int) -> bytes:
    thumb = image.copy()
    thumb.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    thumb.save(out, "WEBP", quality=82, method=4)
    return out.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


CONTENT_TYPES = {"png": "image/png", "webp": "image/webp"}
