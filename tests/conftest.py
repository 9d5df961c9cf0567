"""Shared fixtures: real photos, settings and the real IS-Net model (fetched by `make test`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import Settings

DATA = Path(__file__).parent / "data"
PHOTOS = DATA / "photos"


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def photo_bytes():
    def read(name: str) -> bytes:
        return (PHOTOS / name).read_bytes()

    return read


def configure(settings: Settings, **changes) -> Settings:
    """Settings with some values changed, validated as if they came from the environment."""
    return Settings(**{**settings.model_dump(), **changes})
