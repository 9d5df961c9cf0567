"""Shared fixtures: real photos, settings and the real IS-Net model (fetched by `make test`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import Settings

# tests/contract.py validates every document the pipeline produces against contract/; pytester runs
# the test suite's own checks on purpose-made failures (tests/test_contract.py).
pytest_plugins = ["tests.contract", "pytester"]

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


# A missing tool fails the tests that need it, with one line saying which: never a skip that hides them.
@pytest.fixture(scope="session")
def emulator_tools() -> None:
    from closet_pipeline.dev.tools import missing_tools

    missing = missing_tools()
    if missing:
        pytest.fail(f"the emulator topology cannot run here: {missing}", pytrace=False)


@pytest.fixture(scope="session")
def browser_tools(emulator_tools) -> None:
    from closet_pipeline.dev.tools import missing_tools

    missing = missing_tools(browser=True)
    if missing:
        pytest.fail(f"the browser tests cannot run here: {missing}", pytrace=False)
