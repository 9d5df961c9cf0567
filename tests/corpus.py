"""A corpus of bad, odd and awkward uploads, every one generated in code (one function per case,
each returning the file's bytes). Used by tests/test_bad_input.py.

Nothing here is big: the "huge" images are crafted headers (a 30000x30000 PNG is 100 bytes), and
the real photos are the ~400 px CC0 garment photos of tests/data/photos.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from functools import cache
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image

pillow_heif.register_heif_opener()

PHOTOS = Path(__file__).parent / "data" / "photos"
TSHIRT = "0702f1cb-0096-491e-9267-ee4f3c331fe6.jpg"  # 400x442
PANTS = "ba9cd233-fff5-44f2-8569-b6ba0667d6a9.jpg"  # 400x400
TALL_A = "cf50acf0-c580-402e-9ee7-52b14b57c629.jpg"  # 400x533
TALL_B = "530c78c5-4fda-4abe-9f01-8d329524ab4f.jpg"  # 400x534

RED = (230, 20, 20)
BLUE = (20, 40, 230)
MARKER = 64  # side of the orientation markers, in pixels of the upright photo


# -- helpers -------------------------------------------------------------------------------------
def photo_bytes(name: str = TSHIRT) -> bytes:
    return (PHOTOS / name).read_bytes()


@cache
def _photo_array(name: str) -> np.ndarray:
    with Image.open(PHOTOS / name) as image:
        return np.asarray(image.convert("RGB")).copy()


def photo(name: str = TSHIRT) -> Image.Image:
    return Image.fromarray(_photo_array(name))


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _png_chunk(kind: bytes, body: bytes, *, crc: int | None = None) -> bytes:
    checksum = zlib.crc32(kind + body) if crc is None else crc
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", checksum & 0xFFFFFFFF)


def _png(width: int, height: int, bit_depth: int, colour_type: int, raw_rows: bytes, *,
         ihdr_crc: int | None = None) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr, crc=ihdr_crc)
            + _png_chunk(b"IDAT", zlib.compress(raw_rows)) + _png_chunk(b"IEND", b""))


def _segments(jpeg: bytes):
    """(marker, offset of the marker, length field) for each header segment of a JPEG up to SOS."""
    offset = 2
    while offset < len(jpeg):
        marker = jpeg[offset + 1]
        length = struct.unpack(">H", jpeg[offset + 2:offset + 4])[0]
        yield marker, offset, length
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            return
        offset += 2 + length


# -- not images at all ---------------------------------------------------------------------------
def empty() -> bytes:
    return b""


def one_byte() -> bytes:
    return b"\xff"


def text_named_jpg() -> bytes:
    return "My favourite jumper, size M.\nBought in 2023; wash at 30 °C.\n".encode()


def html_page() -> bytes:
    return b"<!DOCTYPE html>\n<html><head><title>Upload</title></head><body><img src='a.jpg'></body></html>\n"


def zip_archive() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("IMG_0001.jpg", photo_bytes())
        archive.writestr("notes.txt", "three jumpers")
    return out.getvalue()


def pdf_document() -> bytes:
    # A minimal one-page PDF (byte offsets of the xref table don't matter to a sniffer).
    return (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
            b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
            b"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 300 300] >> endobj\n"
            b"trailer << /Root 1 0 R >>\n%%EOF\n")


def svg_external_reference() -> bytes:
    # Rendering this would fetch a URL (SSRF); it must be refused, never rendered.
    return (b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            b'width="400" height="400"><image href="http://169.254.169.254/latest/meta-data/" '
            b'xlink:href="http://example.com/shirt.jpg" width="400" height="400"/></svg>\n')


def bmp_image() -> bytes:
    """A real image, but in a format the pipeline does not accept."""
    return _save(photo().resize((120, 132)), "BMP")


def random_bytes() -> bytes:
    return np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()


# -- damaged images ------------------------------------------------------------------------------
def truncated_jpeg() -> bytes:
    data = photo_bytes()
    return data[: len(data) // 2]


def jpeg_corrupt_huffman_table() -> bytes:
    """The DHT segment's 16 code-length counts overwritten: a table of thousands of codes, which
    libjpeg rejects ("Bogus Huffman table definition")."""
    data = bytearray(photo_bytes())
    for marker, offset, _ in _segments(bytes(data)):
        if marker == 0xC4:
            table = offset + 5  # marker (2), length (2), class/id (1), then the 16 counts
            data[table:table + 16] = b"\xff" * 16
            return bytes(data)
    raise AssertionError("no DHT segment in the photo")


def png_bad_crc() -> bytes:
    rows = b"".join(b"\x00" + bytes([120, 60, 30]) * 64 for _ in range(64))
    return _png(64, 64, 8, 2, rows, ihdr_crc=0x12345678)


def truncated_png() -> bytes:
    data = _save(photo(), "PNG")
    return data[: len(data) // 3]


def truncated_avif() -> bytes:
    """An AVIF photo cut off half-way, as an interrupted upload from a phone leaves it."""
    data = avif_named_jpg()
    return data[: len(data) // 2]


def png_text_chunk_bomb() -> bytes:
    """A small valid PNG with a zTXt comment that inflates to 5 MB (5x the decoder's text limit): refused."""
    data = _save(photo(PANTS).resize((200, 200)), "PNG")
    bomb = _png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"A" * 5_000_000, 9))
    return data[:33] + bomb + data[33:]  # right after the IHDR chunk


def png_30000x30000_header() -> bytes:
    """The IHDR of a 900-megapixel image and one tiny IDAT: refused from the header, never allocated."""
    return _png(30000, 30000, 8, 2, b"\x00" * 16)


# -- sizes ---------------------------------------------------------------------------------------
def one_by_one() -> bytes:
    return _save(Image.new("RGB", (1, 1), RED), "PNG")


def strip_20000x10() -> bytes:
    return _save(Image.new("RGB", (20000, 10), (90, 90, 160)), "PNG")


def over_byte_limit(limit: int) -> bytes:
    """A valid PNG a little over `limit` bytes (noise does not compress)."""
    side = int((limit * 1.2 / 3) ** 0.5) + 1
    noise = np.random.default_rng(1).integers(0, 256, (side, side, 3), dtype=np.uint8)
    data = _save(Image.fromarray(noise), "PNG", compress_level=1)
    assert len(data) > limit
    return data


# -- unusual but valid encodings -----------------------------------------------------------------
def animated_gif() -> bytes:
    """Frame 1 the garment photo, frame 2 a solid blue card: the first frame is the photo."""
    first = photo(PANTS)
    second = Image.new("RGB", first.size, BLUE)
    return _save(first, "GIF", save_all=True, append_images=[second], duration=200, loop=0)


def animated_webp() -> bytes:
    first = photo(PANTS).resize((200, 200))
    second = Image.new("RGB", first.size, BLUE)
    return _save(first, "WEBP", save_all=True, append_images=[second], duration=200, loop=0, quality=90)


def cmyk_jpeg() -> bytes:
    return _save(photo(TSHIRT).convert("CMYK"), "JPEG", quality=92)


def _ycc(rgb: np.ndarray) -> np.ndarray:
    """JFIF full-range RGB -> YCbCr, as libjpeg computes it."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168735892 * r - 0.331264108 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418687589 * g - 0.081312411 * b + 128
    return np.clip(np.round(np.stack([y, cb, cr], -1)), 0, 255).astype(np.uint8)


def ycck_colours() -> dict[str, tuple[int, int, int]]:
    """What each quarter of the YCCK image is, in RGB."""
    return {"top_left": RED, "top_right": (30, 160, 40), "bottom_left": BLUE, "bottom_right": (240, 220, 40)}


def ycck_jpeg() -> bytes:
    """A four-component JPEG whose Adobe marker says transform 2 (YCCK), as Photoshop writes them.

    libjpeg writes CMYK only (transform 0), so the YCbCr planes are computed here, stored through
    Pillow's CMYK writer (which stores inverted values, as Adobe does) and the marker is patched."""
    quarters = ycck_colours()
    rgb = np.zeros((128, 128, 3), np.uint8)
    rgb[:64, :64], rgb[:64, 64:] = quarters["top_left"], quarters["top_right"]
    rgb[64:, :64], rgb[64:, 64:] = quarters["bottom_left"], quarters["bottom_right"]
    cmyk = np.asarray(Image.fromarray(rgb).convert("CMYK"))
    stored = np.concatenate([255 - _ycc(cmyk[..., :3]), cmyk[..., 3:]], -1)  # Pillow inverts again on save
    data = bytearray(_save(Image.fromarray(stored, "CMYK"), "JPEG", quality=95))
    adobe = data.find(b"Adobe")
    transform = adobe + 11  # "Adobe", version (2), flags0 (2), flags1 (2), transform (1)
    assert data[transform] == 0
    data[transform] = 2
    return bytes(data)


def gray16_png() -> bytes:
    """16-bit greyscale: a left-to-right ramp over the full 0..65535 range."""
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (64, 1))
    return _save(Image.fromarray(ramp), "PNG")  # uint16: mode I;16


def rgb16_png(name: str = TSHIRT) -> bytes:
    """16 bits per channel RGB (Pillow writes only 8): each sample v stored as v * 257, big-endian."""
    pixels = (_photo_array(name).astype(">u2") * 257)
    height, width, _ = pixels.shape
    rows = b"".join(b"\x00" + pixels[y].tobytes() for y in range(height))
    return _png(width, height, 16, 2, rows)


def palette_png_with_transparency() -> bytes:
    """A palette image: index 0 fully transparent (left half), index 1 opaque red (right half)."""
    image = Image.new("P", (64, 64), 0)
    image.putpalette([0, 0, 0, *RED] + [0, 0, 0] * 254)
    image.paste(1, (32, 0, 64, 64))
    return _save(image, "PNG", transparency=0)


def la_png() -> bytes:
    """Grey + alpha: top half dark grey and opaque, bottom half black and fully transparent."""
    grey = np.zeros((64, 64), np.uint8)
    alpha = np.zeros((64, 64), np.uint8)
    grey[:32], alpha[:32] = 60, 255
    return _save(Image.merge("LA", (Image.fromarray(grey), Image.fromarray(alpha))), "PNG")


def heic_named_jpg() -> bytes:
    return _save(photo(TALL_B), "HEIF", quality=90)


def avif_named_jpg() -> bytes:
    return _save(photo(PANTS).resize((200, 200)), "AVIF", quality=90)


def fully_transparent_png() -> bytes:
    """Nothing visible at all (every alpha 0), at the size an app export or sticker has."""
    return _save(Image.new("RGBA", (800, 800), (120, 40, 200, 0)), "PNG")


def plain_wall() -> bytes:
    """A beige wall: uniform colour with a little sensor noise, no garment anywhere."""
    noise = np.random.default_rng(3).normal(0, 3, (360, 360, 1))
    wall = np.clip(np.array([222, 205, 178], float) + noise, 0, 255).astype(np.uint8)
    return _save(Image.fromarray(wall), "JPEG", quality=92)


def huge_exif() -> bytes:
    """A valid photo carrying ~60 KB of EXIF (a UserComment and a MakerNote, as some phones write)."""
    exif = Image.Exif()
    exif[0x010F] = "ClosetCam"
    ifd = exif.get_ifd(0x8769)
    ifd[0x9286] = b"ASCII\x00\x00\x00" + b"A long comment. " * 1900  # UserComment, ~30 KB
    ifd[0x927C] = bytes(range(256)) * 112  # MakerNote, ~28 KB
    data = _save(photo(TALL_A), "JPEG", quality=90, exif=exif)
    return data


def corrupt_exif() -> bytes:
    """A valid photo whose APP1 Exif block is garbage after the TIFF header (IFD offset past the end)."""
    data = photo_bytes(PANTS)
    garbage = b"Exif\x00\x00" + b"MM\x00\x2a" + struct.pack(">I", 0x7FFFFFF0) + bytes(range(200))
    app1 = b"\xff\xe1" + struct.pack(">H", len(garbage) + 2) + garbage
    return data[:2] + app1 + data[2:]


# -- EXIF orientation ----------------------------------------------------------------------------
def marked_photo(name: str = TALL_A) -> Image.Image:
    """The upright view: a garment photo (taller than wide) with a red square in its top-left
    corner and a blue one in its top-right. Two markers on adjacent corners tell all eight
    orientations apart."""
    pixels = _photo_array(name).copy()
    pixels[:MARKER, :MARKER] = RED
    pixels[:MARKER, -MARKER:] = BLUE
    return Image.fromarray(pixels)


def _stored_for_orientation(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels a camera stores for each EXIF orientation value, from the TIFF/EXIF definition
    ("row 0 is the visual ..., column 0 is the visual ..."), independent of Pillow's table."""
    return {
        1: lambda a: a,  # row 0 top, column 0 left
        2: lambda a: a[:, ::-1],  # row 0 top, column 0 right
        3: lambda a: a[::-1, ::-1],  # row 0 bottom, column 0 right
        4: lambda a: a[::-1, :],  # row 0 bottom, column 0 left
        5: lambda a: a.transpose(1, 0, 2),  # row 0 left, column 0 top
        6: lambda a: np.rot90(a, 1),  # row 0 right, column 0 top
        7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],  # row 0 right, column 0 bottom
        8: lambda a: np.rot90(a, -1),  # row 0 left, column 0 bottom
    }[orientation](upright)


def exif_orientation(orientation: int, name: str = TALL_A) -> bytes:
    stored = np.ascontiguousarray(_stored_for_orientation(np.asarray(marked_photo(name)), orientation))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _save(Image.fromarray(stored), "JPEG", quality=95, exif=exif)
