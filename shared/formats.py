"""The photo formats the pipeline accepts, defined once: upload_url signs only their content types,
ingest lets Pillow open only these formats, the refusals name them for people, and the demo page
lists them. The browser module (clients/web/closet-upload.js) keeps an extension -> type table of
its own, because it must name a type before any server answers; tests/test_web.py checks it
against this one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PhotoFormat:
    name: str  # as people call it
    pillow: str  # Pillow's format name (Image.open(formats=...))
    content_types: tuple[str, ...]  # what upload_url accepts for it
    extensions: tuple[str, ...]  # file name endings browsers may leave untyped


FORMATS = (
    PhotoFormat("JPEG", "JPEG", ("image/jpeg",), ("jpg", "jpeg", "jfif")),
    PhotoFormat("PNG", "PNG", ("image/png",), ("png",)),
    PhotoFormat("WebP", "WEBP", ("image/webp",), ("webp",)),
    PhotoFormat("GIF", "GIF", ("image/gif",), ("gif",)),
    PhotoFormat("HEIC", "HEIF", ("image/heic", "image/heif"), ("heic", "heif")),  # phones' HEIC/HEIF
    PhotoFormat("AVIF", "AVIF", ("image/avif",), ("avif",)),
)

CONTENT_TYPES = frozenset(t for f in FORMATS for t in f.content_types)
PILLOW_FORMATS = tuple(f.pillow for f in FORMATS)
TYPES_BY_EXTENSION = {extension: f.content_types[-1 if extension == "heif" else 0]
                      for f in FORMATS for extension in f.extensions}


def spoken() -> str:
    """"JPEG, PNG, WebP, GIF, HEIC or AVIF": for sentences a person reads."""
    names = [f.name for f in FORMATS]
    return ", ".join(names[:-1]) + " or " + names[-1]
