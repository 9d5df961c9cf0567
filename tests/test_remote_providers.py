"""remove.bg, the Gradio Space and the SegFormer API against local fakes (no internet), with real photos;
and once, the retry every remote provider shares."""

from __future__ import annotations

import logging
import re
import socket
import time
import traceback
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw

from shared.config import Settings
from shared.errors import ProviderFailed, ProvidersExhausted
from shared.messages import Category
from shared.providers.background import BackgroundChain, BackgroundRemover, build_background_chain
from shared.providers.background.hf_space import HfSpaceRemover, space_url
from shared.providers.background.removebg import RemoveBgRemover
from shared.providers.remote import HttpProvider, named_delay
from shared.providers.segmentation import build_segmenter
from shared.providers.segmentation.segformer_http import SegformerHttpSegmenter
from tests.fakes.gradio_space import ERROR_EVENT, FakeGradioSpace
from tests.fakes.http import FakeHttpServer, Reply, parse_multipart
from tests.fakes.removebg import GARBAGE, TIMEOUT, FakeRemoveBg, corner_mask
from tests.fakes.segformer import BAD_IMAGE, STATUS_ERROR, FakeSegformer, png_base64

PHOTOS = Path(__file__).parent / "data" / "photos"
TSHIRT, PANTS, SHOES = (
    "0702f1cb-0096-491e-9267-ee4f3c331fe6.jpg",
    "ba9cd233-fff5-44f2-8569-b6ba0667d6a9.jpg",
    "530c78c5-4fda-4abe-9f01-8d329524ab4f.jpg",
)
KEY = "sk-test-9f8e7d6c5b4a"
TIMEOUT_S = 0.5


@pytest.fixture(autouse=True)
def _close_http_clients(monkeypatch):
    """Providers hold a pooled client for life; closing every one keeps sockets from outliving a test."""
    clients: list[httpx.Client] = []
    original = httpx.Client.__init__

    def init(self, *args, **kwargs) -> None:
        original(self, *args, **kwargs)
        clients.append(self)

    monkeypatch.setattr(httpx.Client, "__init__", init)
    yield
    for client in clients:
        client.close()


def photo(name: str) -> Image.Image:
    with Image.open(PHOTOS / name) as image:
        return image.convert("RGB")


def settings(**values) -> Settings:
    return Settings(provider_timeout_s=TIMEOUT_S, **values)


def free_port_url() -> str:
    """A local URL where nothing listens: connection refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def foreground(mask: Image.Image) -> np.ndarray:
    return np.asarray(mask) > 127


class ThresholdRemover(BackgroundRemover):
    """The chain's local stand-in: a real, cheap mask (far from the corners' colour)."""

    name = "threshold"

    @classmethod
    def from_settings(cls, settings) -> "ThresholdRemover":
        return cls()

    def mask(self, image: Image.Image) -> Image.Image:
        return Image.fromarray(corner_mask(image).astype(np.uint8) * 255)


# -- remove.bg ---------------------------------------------------------------------------------
@pytest.fixture
def removebg():
    with FakeRemoveBg(api_key=KEY) as fake:
        yield fake


@pytest.mark.parametrize("name", [TSHIRT, PANTS, SHOES])
def test_removebg_mask_is_the_cutouts_alpha(removebg, name):
    image = photo(name)
    mask = RemoveBgRemover.from_settings(settings(removebg_api_key=KEY, removebg_url=removebg.url)).mask(image)
    assert mask.mode == "L" and mask.size == image.size
    assert np.array_equal(foreground(mask), removebg.masks[-1])  # exactly what the service cut out
    coverage = foreground(mask).mean()
    assert 0.05 < coverage < 0.95  # a garment, not nothing and not everything
    assert abs(coverage - corner_mask(image).mean()) < 0.03  # JPEG q90 on the way barely moves it


def test_removebg_sends_key_jpeg_and_fields(removebg):
    image = photo(TSHIRT)
    RemoveBgRemover(KEY, removebg.url, TIMEOUT_S).mask(image)
    request = removebg.requests[-1]
    assert request.headers["x-api-key"] == KEY
    fields = parse_multipart(request)
    assert fields["size"].data == b"auto" and fields["format"].data == b"png"
    assert fields["image_file"].content_type == "image/jpeg"
    assert removebg.uploads[-1].format == "JPEG" and removebg.uploads[-1].size == image.size


def test_removebg_mask_is_resized_to_the_input():
    image = photo(PANTS)
    with FakeRemoveBg(api_key=KEY, scale=0.5) as fake:
        mask = RemoveBgRemover(KEY, fake.url, TIMEOUT_S).mask(image)
    assert mask.size == image.size
    assert abs(foreground(mask).mean() - fake.masks[-1].mean()) < 0.03


@pytest.mark.parametrize(
    "mode, reason",
    [
        (503, "remove.bg answered 503"),
        (429, "remove.bg is rate-limiting us (429)"),
        (402, "remove.bg refused the photo (402): Insufficient credits"),
        (400, "Could not identify foreground in image."),
        (TIMEOUT, f"remove.bg timed out after {TIMEOUT_S:g} s"),
        (GARBAGE, "remove.bg returned a broken image"),
    ],
)
def test_removebg_failures_are_provider_failed(removebg, caplog, mode, reason):
    caplog.set_level(logging.DEBUG)
    removebg.fail_next(mode)
    with pytest.raises(ProviderFailed) as caught:
        RemoveBgRemover(KEY, removebg.url, TIMEOUT_S).mask(photo(TSHIRT))
    assert reason in caught.value.message and caught.value.retryable
    assert KEY not in "".join(traceback.format_exception(caught.value)) and KEY not in caplog.text


def test_removebg_bad_key_and_no_server(caplog):
    caplog.set_level(logging.DEBUG)
    with FakeRemoveBg(api_key="the-right-key") as fake, \
            pytest.raises(ProviderFailed, match="403.*API Key invalid") as bad_key:
        RemoveBgRemover(KEY, fake.url, TIMEOUT_S).mask(photo(SHOES))
    with pytest.raises(ProviderFailed, match="could not be reached") as unreachable:
        RemoveBgRemover(KEY, free_port_url() + "/v1.0/removebg", TIMEOUT_S).mask(photo(SHOES))
    for caught in (bad_key, unreachable):
        assert KEY not in "".join(traceback.format_exception(caught.value))
    assert KEY not in caplog.text


def test_removebg_without_key_stops_at_start():
    with pytest.raises(ValueError, match="CLOSET_REMOVEBG_API_KEY"):
        RemoveBgRemover.from_settings(settings(removebg_api_key=None))


# -- the chain ---------------------------------------------------------------------------------
def test_chain_hands_over_when_removebg_fails(removebg, caplog):
    image = photo(TSHIRT)
    config = settings(background_providers="removebg", removebg_api_key=KEY, removebg_url=removebg.url)
    chain = build_background_chain(config)
    chain.providers.append(ThresholdRemover())
    removebg.fail_next(503)
    result = chain.mask(image)
    assert result.provider == "threshold" and result.mask.size == image.size
    assert len(result.skipped) == 1 and result.skipped[0].startswith("removebg: remove.bg answered 503")
    assert np.array_equal(foreground(result.mask), corner_mask(image))
    assert chain.mask(image).provider == "removebg"  # the outage is over: remove.bg serves again
    assert KEY not in caplog.text


def test_chain_with_every_provider_failing_is_retryable(removebg):
    with FakeGradioSpace() as space:
        chain = BackgroundChain(
            [RemoveBgRemover(KEY, removebg.url, TIMEOUT_S), HfSpaceRemover(space.url, timeout_s=TIMEOUT_S)]
        )
        removebg.fail_next(429)
        space.fail_next(ERROR_EVENT)
        with pytest.raises(ProvidersExhausted) as caught:
            chain.mask(photo(PANTS))
    assert caught.value.retryable
    assert "removebg: remove.bg is rate-limiting us" in caught.value.message
    assert "hf-space: hf-space failed to process the photo" in caught.value.message


# -- the Gradio Space --------------------------------------------------------------------------
@pytest.mark.parametrize("name", [TSHIRT, SHOES])
def test_hf_space_mask_with_token(name):
    image = photo(name)
    with FakeGradioSpace(token="hf_secret") as space:
        remover = HfSpaceRemover.from_settings(settings(hf_space=space.url, hf_token="hf_secret"))
        mask = remover.mask(image)
    assert mask.mode == "L" and mask.size == image.size
    assert np.array_equal(foreground(mask), space.masks[-1])
    upload, call, stream, download = space.requests
    assert (upload.method, upload.path) == ("POST", "/gradio_api/upload")
    assert parse_multipart(upload)["files"].content_type == "image/jpeg"
    assert (call.method, call.path) == ("POST", "/gradio_api/call/predict")
    assert (stream.method, stream.path.rsplit("/", 1)[0]) == ("GET", "/gradio_api/call/predict")
    assert (download.method, download.path.split("=")[0]) == ("GET", "/gradio_api/file")
    assert all(r.headers["authorization"] == "Bearer hf_secret" for r in space.requests)


@pytest.mark.parametrize(
    "mode, reason",
    [
        (ERROR_EVENT, "hf-space failed to process the photo"),
        (503, "hf-space answered 503"),
        (429, "hf-space is rate-limiting us (429)"),
        (TIMEOUT, f"hf-space timed out after {TIMEOUT_S:g} s"),
        (GARBAGE, "hf-space returned a broken image"),
    ],
)
def test_hf_space_failures_are_provider_failed(mode, reason):
    with FakeGradioSpace() as space:
        space.fail_next(mode)
        with pytest.raises(ProviderFailed, match=re.escape(reason)):
            HfSpaceRemover(space.url, timeout_s=TIMEOUT_S).mask(photo(TSHIRT))


def test_hf_space_wrong_token_and_warm_up(caplog):
    with FakeGradioSpace(token="hf_right") as space:
        with pytest.raises(ProviderFailed, match="401"):
            HfSpaceRemover(space.url, token="hf_wrong", timeout_s=TIMEOUT_S).mask(photo(TSHIRT))
        HfSpaceRemover(space.url, token="hf_right", timeout_s=TIMEOUT_S).warm_up()
        assert (space.requests[-1].method, space.requests[-1].path) == ("GET", "/config")
    with caplog.at_level(logging.WARNING):
        HfSpaceRemover(free_port_url(), timeout_s=TIMEOUT_S).warm_up()  # logged, never raised
    assert "warm-up ping" in caplog.text


def test_space_url_and_missing_setting():
    assert space_url("ClosetConnect/Rembg_Space.v2") == "https://closetconnect-rembg-space-v2.hf.space"
    assert space_url("http://127.0.0.1:7860/") == "http://127.0.0.1:7860"
    with pytest.raises(ValueError, match="CLOSET_HF_SPACE"):
        HfSpaceRemover.from_settings(settings(hf_space=None))


# -- the SegFormer API -------------------------------------------------------------------------
LABELS = ["hat", "upper-clothes", "dress", "pants", "skirt", "left-shoe", "right-shoe", "bag", "scarf", "Upper_Clothes"]
# SegFormer's labels in the wardrobe's vocabulary, with their categories.
EXPECTED = [("scarf", Category.ACC), ("bag", Category.ACC), ("shoes", Category.SHOES), ("shoes", Category.SHOES),
            ("skirt", Category.BOTTOM), ("pants", Category.BOTTOM), ("dress", Category.TOP), ("top", Category.TOP),
            ("hat", Category.ACC)]


def blobs_cutout() -> Image.Image:
    """A 600x300 cut-out with nine opaque squares in a row (areas grow left to right) and a tiny tenth."""
    cutout = Image.new("RGBA", (600, 300), (0, 0, 0, 0))
    draw = ImageDraw.Draw(cutout)
    for index in range(9):
        side = 34 + 4 * index  # 34..66 px: 1156..4356 px², all above min_garment_pixels=1000
        left, top = index * 66, 0 if index == 0 else 100
        draw.rectangle((left, top, left + side - 1, top + side - 1), fill=(40 + 20 * index, 80, 160, 255))
    draw.rectangle((590, 280, 597, 287), fill=(255, 0, 0, 255))  # 64 px²: dropped
    return cutout


def test_segformer_maps_labels_drops_small_and_sorts():
    with FakeSegformer(labels=LABELS) as fake:
        fake.extra_items.append({"label": "background", "bbox": [0, 0, 600, 300], "image_base64": "",
                                 "area_pixels": 180000})
        config = settings(segmenter="segformer-http", segformer_url=fake.url + "/", min_garment_pixels=1000)
        segmenter = build_segmenter(config)
        garments = segmenter.segment(blobs_cutout())
        assert parse_multipart(fake.requests[-1])["file"].content_type == "image/png"
        assert fake.uploads[-1].mode == "RGBA"
    # Largest first (LABELS[8::-1]); background and the tiny blob gone.
    assert [(g.label, g.category) for g in garments] == EXPECTED
    for g in garments:
        assert g.crop.mode == "RGBA" and g.crop.size == (g.bbox[2] - g.bbox[0], g.bbox[3] - g.bbox[1])
    assert [g.area_pixels for g in garments] == [(34 + 4 * i) ** 2 for i in range(8, -1, -1)]
    assert [g.touches_border for g in garments] == [False] * 8 + [True]  # the hat square sits on the top edge


def test_segformer_clamps_boxes_to_the_cutout():
    crop = Image.new("RGBA", (40, 40), (200, 30, 30, 255))
    with FakeSegformer() as fake:  # a transparent cut-out: only the scripted item comes back
        fake.extra_items.append({"label": "Left Shoe", "bbox": [-5.4, 250, 700, 330.2],
                                 "image_base64": "data:image/png;base64," + png_base64(crop), "area_pixels": 1600})
        (garment,) = SegformerHttpSegmenter(fake.url, 1000, TIMEOUT_S).segment(Image.new("RGBA", (600, 300)))
    assert garment.bbox == (0, 250, 600, 300) and garment.touches_border
    assert (garment.label, garment.category, garment.crop.size) == ("shoes", Category.SHOES, (40, 40))


def test_segformer_on_a_real_cutout(removebg):
    image = photo(TSHIRT)
    cutout = image.convert("RGBA")
    cutout.putalpha(RemoveBgRemover(KEY, removebg.url, TIMEOUT_S).mask(image))
    with FakeSegformer(labels=["upper-clothes"]) as fake:
        garments = SegformerHttpSegmenter(fake.url, 1000, TIMEOUT_S).segment(cutout)
    assert garments and garments[0].category is Category.TOP
    assert all(g.area_pixels >= 1000 for g in garments)
    assert [g.area_pixels for g in garments] == sorted((g.area_pixels for g in garments), reverse=True)
    assert garments[0].area_pixels > 0.3 * foreground(cutout.getchannel("A")).sum()  # the shirt is the big blob


@pytest.mark.parametrize(
    "mode, reason",
    [
        (503, "answered 503"),
        (429, "429"),
        (TIMEOUT, "timed out"),
        (GARBAGE, "malformed JSON"),
        (BAD_IMAGE, "broken garment image"),
    ],
)
def test_segformer_failures_are_provider_failed(mode, reason):
    with FakeSegformer() as fake:
        fake.fail_next(mode)
        with pytest.raises(ProviderFailed, match=re.escape(reason)):
            SegformerHttpSegmenter(fake.url, 1000, TIMEOUT_S).segment(blobs_cutout())
    with pytest.raises(ProviderFailed, match="could not be reached"):
        SegformerHttpSegmenter(free_port_url(), 1000, TIMEOUT_S).segment(blobs_cutout())


def test_segformer_finding_nothing_is_an_empty_list():
    with FakeSegformer() as fake:
        fake.fail_next(STATUS_ERROR)
        assert SegformerHttpSegmenter(fake.url, 1000, TIMEOUT_S).segment(blobs_cutout()) == []
    with pytest.raises(ValueError, match="CLOSET_SEGFORMER_URL"):
        SegformerHttpSegmenter.from_settings(settings(segformer_url=None))


# -- the shared base (shared/providers/remote.py) ------------------------------------------------
class Probe(HttpProvider):
    """The smallest provider on the base: GET a URL, allowing three attempts."""

    who = "the probe"
    attempts = 3

    def fetch(self, url: str, deadline: float | None = None) -> bytes:
        return self.call(lambda: self.send("GET", url), deadline).content


def answer(status: int, **headers: str) -> Reply:
    return Reply(status, b'{"detail": "busy"}' if status >= 400 else b"ok", "application/json", headers)


def test_retry_after_the_named_delay_up_to_the_attempts():
    with FakeHttpServer() as server:
        server.enqueue(answer(503, **{"Retry-After": "0.1"}), answer(429, **{"retry-after-ms": "100"}), answer(200))
        started = time.monotonic()
        assert Probe(TIMEOUT_S).fetch(server.url) == b"ok"
        assert time.monotonic() - started >= 0.2 and len(server.requests) == 3
        server.enqueue(*[answer(429, **{"Retry-After": "0"})] * 4)
        with pytest.raises(ProviderFailed, match=r"^the probe is rate-limiting us \(429\) after 3 attempts: busy$"):
            Probe(TIMEOUT_S).fetch(server.url)
        assert len(server.requests) == 3 + 3


@pytest.mark.parametrize("status, reason", [(500, "the probe answered 500"), (400, "the probe refused the photo (400)")])
def test_a_failure_of_the_request_itself_is_not_retried(status, reason):
    with FakeHttpServer() as server:
        server.enqueue(answer(status, **{"Retry-After": "0"}), answer(200))
        with pytest.raises(ProviderFailed, match=re.escape(f"{reason}: busy")):
            Probe(TIMEOUT_S).fetch(server.url)
        assert len(server.requests) == 1


def test_the_wait_is_capped_and_never_outlasts_the_deadline():
    with FakeHttpServer() as server:
        probe = Probe(TIMEOUT_S)
        probe.max_retry_wait_s = 0.1
        server.enqueue(answer(503, **{"Retry-After": "30"}), answer(200))
        started = time.monotonic()
        assert probe.fetch(server.url) == b"ok"  # waited the cap, not the 30 s asked for
        assert 0.1 <= time.monotonic() - started < 2
        server.enqueue(answer(503, **{"Retry-After": "1"}), answer(200))
        started = time.monotonic()
        with pytest.raises(ProviderFailed, match="the probe answered 503"):
            Probe(TIMEOUT_S).fetch(server.url, deadline=started + 0.6)  # the wait would outlast the caller
        assert time.monotonic() - started < 1 and len(server.requests) == 3


IN_30_S = "an HTTP date 30 s from now"  # made when the test runs, not when it is collected


@pytest.mark.parametrize("headers, delay", [
    ({"retry-after-ms": "250", "retry-after": "7"}, 0.25),
    ({"retry-after": "7"}, 7.0),
    ({"retry-after": IN_30_S}, 30.0),
    ({"retry-after": "soon"}, None),
    ({}, None),
])
def test_named_delay(headers, delay):
    if headers.get("retry-after") == IN_30_S:
        headers = {"retry-after": format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)}
    got = named_delay(httpx.Headers(headers))
    assert got is None if delay is None else got == pytest.approx(delay, abs=1.5 if delay == 30 else 1e-9)
