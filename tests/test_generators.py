"""The expand generators (Gemini, OpenAI image edit) through their real SDKs against local fakes:
what travels, what comes back, and how every failure becomes ProviderFailed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageOps

from shared.config import Settings
from shared.errors import ProviderFailed
from shared.providers.generation import Generator, build_generator
from shared.providers.generation.gemini import GeminiGenerator
from shared.providers.generation.openai_images import OpenAIImageEditGenerator
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai_images import FakeOpenAIImages

PHOTO = Path(__file__).parent / "data" / "photos" / "cf50acf0-c580-402e-9ee7-52b14b57c629.jpg"
MARGIN = 50
PROMPT = "Extend the garment into the white margin. Product photo."
CAP_S = 0.2  # the longest 429 wait the tests allow


@pytest.fixture(scope="module")
def canvas() -> Image.Image:
    """A real garment photo on a white margin, as expand prepares it."""
    photo = Image.open(PHOTO).convert("RGB").crop((40, 100, 360, 470))
    return ImageOps.expand(photo, MARGIN, fill="white")


@dataclass
class Provider:
    """What a test needs to drive one generator against its fake."""

    name: str
    fake: Any
    make: Callable[..., Generator]
    behaviour: dict[str, str]  # generic failure -> the fake's name for it

    def call_image(self, index: int = 0) -> Image.Image:
        return self.fake.calls[index].image


@pytest.fixture(params=["gemini", "openai"])
def provider(request) -> Iterator[Provider]:
    if request.param == "gemini":
        with FakeGemini(retry_delay="0.1s", slow_s=5) as fake:

            def make(timeout_s: float = 5.0, max_retry_wait_s: float = CAP_S, api_key: str = fake.api_key) -> Generator:
                return GeminiGenerator(
                    api_key,
                    "gemini-2.5-flash-image",
                    base_url=fake.url,
                    timeout_s=timeout_s,
                    max_retry_wait_s=max_retry_wait_s,
                )

            behaviour = {"rate_limit": "rate_limit", "rate_limit_alt": "rate_limit_header"}
            yield Provider("gemini", fake, make, behaviour)
    else:
        with FakeOpenAIImages(retry_after_s=0.1, slow_s=5) as fake:

            def make(timeout_s: float = 5.0, max_retry_wait_s: float = CAP_S, api_key: str = fake.api_key) -> Generator:
                return OpenAIImageEditGenerator(
                    api_key, "gpt-image-1", base_url=fake.url, timeout_s=timeout_s, max_retry_wait_s=max_retry_wait_s
                )

            behaviour = {"rate_limit": "rate_limit", "rate_limit_alt": "rate_limit_ms"}
            yield Provider("openai", fake, make, behaviour)


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB")).astype(int)


# -- success ---------------------------------------------------------------------------------
def test_expand_returns_the_input_with_its_margin_filled(provider: Provider, canvas: Image.Image) -> None:
    out = provider.make().expand(canvas, PROMPT)

    assert out.size == canvas.size
    got, sent = _pixels(out), _pixels(canvas)
    inner = np.s_[MARGIN:-MARGIN, MARGIN:-MARGIN]
    assert np.array_equal(got[inner], sent[inner]), "the garment came back unchanged"
    # The fake filled the white margin with the garment's edge colours: proof the canvas travelled.
    assert np.array_equal(got[MARGIN:-MARGIN, 0], sent[MARGIN:-MARGIN, MARGIN])
    assert np.array_equal(got[MARGIN:-MARGIN, -1], sent[MARGIN:-MARGIN, -MARGIN - 1])
    assert np.array_equal(got[0], got[MARGIN])
    assert (sent[:MARGIN] == 255).all() and got[:MARGIN].mean() < 230


def test_request_carries_prompt_model_png_and_key(provider: Provider, canvas: Image.Image) -> None:
    provider.make().expand(canvas, PROMPT)

    [call] = provider.fake.calls
    assert call.prompt == PROMPT
    assert call.image.format == "PNG"
    assert np.array_equal(_pixels(call.image), _pixels(canvas)), "the canvas is sent losslessly"
    if provider.name == "gemini":
        assert call.model == "gemini-2.5-flash-image"
        assert call.api_key == provider.fake.api_key
        assert call.image_mime == "image/png"
        assert call.modalities == ["IMAGE"]
        assert call.api_version in ("v1", "v1beta")
    else:
        assert call.model == "gpt-image-1"
        assert call.authorization == f"Bearer {provider.fake.api_key}"
        assert (call.image_filename, call.image_type) == ("canvas.png", "image/png")
        assert call.size == "auto"


def test_one_client_per_instance(provider: Provider, canvas: Image.Image) -> None:
    generator = provider.make()
    generator.warm_up()
    client = generator._client
    assert client is not None
    generator.expand(canvas, PROMPT)
    generator.expand(canvas, PROMPT)
    assert generator._client is client
    assert len(provider.fake.calls) == 2


# -- 429 -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["rate_limit", "rate_limit_alt"])
def test_429_is_retried_once_after_the_named_delay(provider: Provider, canvas: Image.Image, kind: str) -> None:
    provider.fake.fail_next(provider.behaviour[kind])  # asks for 0.1 s (RetryInfo / Retry-After / retry-after-ms)
    start = time.monotonic()
    out = provider.make().expand(canvas, PROMPT)
    elapsed = time.monotonic() - start

    assert out.size == canvas.size
    assert len(provider.fake.calls) == 2
    assert 0.1 <= elapsed < 0.1 + 1.0


def test_429_delay_is_capped(provider: Provider, canvas: Image.Image) -> None:
    if provider.name == "gemini":
        provider.fake.retry_delay = "30s"
    else:
        provider.fake.retry_after_s = 30
    provider.fake.fail_next("rate_limit")
    start = time.monotonic()
    provider.make(max_retry_wait_s=CAP_S).expand(canvas, PROMPT)
    elapsed = time.monotonic() - start

    assert len(provider.fake.calls) == 2
    assert CAP_S <= elapsed < CAP_S + 1.0


def test_429_twice_fails_after_exactly_one_retry(provider: Provider, canvas: Image.Image) -> None:
    provider.fake.fail_next("rate_limit", "rate_limit", "rate_limit")
    with pytest.raises(ProviderFailed, match="rate limited"):
        provider.make().expand(canvas, PROMPT)
    assert len(provider.fake.calls) == 2, "no SDK retries on top of ours"


def test_429_is_not_retried_past_the_callers_deadline(provider: Provider, canvas: Image.Image) -> None:
    provider.fake.fail_next("rate_limit")  # asks for 0.1 s
    with pytest.raises(ProviderFailed, match="rate limited"):
        provider.make().expand(canvas, PROMPT, time.monotonic() + 0.05)
    assert len(provider.fake.calls) == 1


# -- other failures --------------------------------------------------------------------------
def test_server_error_fails_without_retry(provider: Provider, canvas: Image.Image) -> None:
    provider.fake.fail_next("server_error", "server_error")
    with pytest.raises(ProviderFailed, match="HTTP 500") as caught:
        provider.make().expand(canvas, PROMPT)
    assert caught.value.code == "PROVIDER_FAILED" and caught.value.retryable
    assert len(provider.fake.calls) == 1


@pytest.mark.parametrize(
    ("provider", "behaviour", "reason"),
    [
        ("gemini", "text_only", r"no image: finish reason STOP, 'I can only describe"),
        ("gemini", "safety", r"no image: finish reason SAFETY"),
        ("gemini", "blocked", r"no image: prompt blocked \(PROHIBITED_CONTENT\)"),
        ("openai", "no_image", r"no image"),
        ("openai", "moderation", r"refused to edit the image \(moderation_blocked\): .*safety system"),
    ],
    indirect=["provider"],
)
def test_no_image_names_the_reason(provider: Provider, canvas: Image.Image, behaviour: str, reason: str) -> None:
    provider.fake.fail_next(behaviour)
    with pytest.raises(ProviderFailed, match=reason):
        provider.make().expand(canvas, PROMPT)


@pytest.mark.parametrize("behaviour", ["garbage", "broken"])
def test_undecodable_image_fails(provider: Provider, canvas: Image.Image, behaviour: str) -> None:
    provider.fake.fail_next(behaviour)
    with pytest.raises(ProviderFailed, match="image that cannot be decoded"):
        provider.make().expand(canvas, PROMPT)


def test_timeout_fails_in_bounded_time(provider: Provider, canvas: Image.Image) -> None:
    provider.fake.fail_next("slow")  # answers after 5 s
    start = time.monotonic()
    with pytest.raises(ProviderFailed, match="did not answer within 1 s"):
        provider.make(timeout_s=1.0).expand(canvas, PROMPT)
    assert time.monotonic() - start < 3.0
    assert len(provider.fake.calls) == 1


def test_wrong_key_is_rejected(provider: Provider, canvas: Image.Image) -> None:
    with pytest.raises(ProviderFailed, match="rejected the request"):
        provider.make(api_key="not-the-key").expand(canvas, PROMPT)


def test_key_never_in_messages_or_logs(provider: Provider, canvas: Image.Image, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    generator = provider.make()
    key = provider.fake.api_key
    provider.fake.fail_next("rate_limit", "rate_limit", "server_error", provider.behaviour["rate_limit_alt"])
    messages = [repr(generator)]
    for _ in range(2):
        with pytest.raises(ProviderFailed) as caught:
            generator.expand(canvas, PROMPT)
        error = caught.value
        messages += [str(error), repr(error), repr(error.__cause__), repr(error.__context__)]
    generator.expand(canvas, PROMPT)  # the 429 then success path logs the retry
    with pytest.raises(ProviderFailed) as caught:
        provider.make(api_key=key + "-wrong").expand(canvas, PROMPT)
    messages.append(str(caught.value))

    assert "retrying once" in caplog.text
    assert key not in caplog.text
    assert not [m for m in messages if key in m]


# -- settings --------------------------------------------------------------------------------
def test_from_settings_builds_a_working_generator(provider: Provider, canvas: Image.Image) -> None:
    if provider.name == "gemini":
        settings = Settings(
            generator="gemini",
            gemini_api_key=provider.fake.api_key,
            gemini_base_url=provider.fake.url,
            gemini_model="gemini-test-model",
            expand_timeout_s=7,
        )
    else:
        settings = Settings(
            generator="openai",
            openai_api_key=provider.fake.api_key,
            openai_base_url=provider.fake.url,
            openai_model="gpt-test-model",
            expand_timeout_s=7,
        )
    generator = build_generator(settings)
    assert generator.name == provider.name
    assert generator.timeout_s == 7
    generator.expand(canvas, PROMPT)
    assert provider.fake.calls[0].model.endswith("test-model")


@pytest.mark.parametrize(
    ("cls", "variable"),
    [(GeminiGenerator, "CLOSET_GEMINI_API_KEY"), (OpenAIImageEditGenerator, "CLOSET_OPENAI_API_KEY")],
)
def test_from_settings_without_key(cls: type[Generator], variable: str) -> None:
    with pytest.raises(ValueError, match=f"{variable} is not set"):
        cls.from_settings(Settings(gemini_api_key=None, openai_api_key=None))
