"""The whole pipeline in one process, on real photos, with the real model: what a user gets."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from closet_pipeline.adapters.memory import MemoryBlobStore
from closet_pipeline.local_run import LocalPipeline
from shared.config import ExpandPolicy
from shared.documents import ProgressEvent
from shared.media.image_io import decode
from shared.messages import Category
from shared.stages import remove_background
from shared.topology import load as load_topology
from tests.conftest import PHOTOS, configure
from tests.fakes.gemini import FakeGemini
from tests.fakes.removebg import FakeRemoveBg

TSHIRT = "0702f1cb-0096-491e-9267-ee4f3c331fe6.jpg"
PANTS = "ba9cd233-fff5-44f2-8569-b6ba0667d6a9.jpg"


@pytest.fixture(scope="module")
def pipeline(settings):
    store = MemoryBlobStore()
    pipeline = LocalPipeline(settings, store)
    yield pipeline
    pipeline.close()


def read_image(store, url: str) -> Image.Image:
    return decode(store.open_url(url))


def results_for(pipeline, job_id: str) -> list[bytes]:
    return [data for topic, data, attrs in pipeline.bus.published
            if topic == pipeline.topology.results_topic and attrs["jobId"] == job_id]


def test_a_photo_becomes_a_cutout_and_garment_crops(pipeline, photo_bytes):
    events: list[ProgressEvent] = []
    doc = pipeline.process_bytes(photo_bytes(TSHIRT), TSHIRT, cloth_id="tee", on_progress=events.append)
    assert doc.success and doc.error_code is None and not doc.cache_hit
    cutout = read_image(pipeline.store, doc.removed_bg_image_url)
    original = Image.open(PHOTOS / TSHIRT)
    assert cutout.mode == "RGBA" and cutout.size == original.size  # the whole photo, not cropped
    alpha = np.asarray(cutout.getchannel("A"))
    assert 0.15 < (alpha > 127).mean() < 0.9  # a garment, and background removed around it
    assert alpha[0, 0] < 30 and alpha[alpha.shape[0] // 2, alpha.shape[1] // 2] > 200
    assert len(doc.all_segmented_items) >= 1
    item = doc.all_segmented_items[0]
    crop = read_image(pipeline.store, item.url)
    left, top, right, bottom = item.bbox
    assert crop.size == (right - left, bottom - top)
    assert doc.segmented_image_url == item.url
    thumb = read_image(pipeline.store, item.thumbnail_url)
    assert max(thumb.size) <= 256
    assert doc.providers["remove_background"] == "local" and doc.providers["segment"] == "local"
    assert set(doc.timings) >= {"ingest", "remove_background", "segment", "expand", "deliver"}
    percentages = [e.progress_percentage for e in events]
    assert percentages[:4] == [10, 25, 30, 50] and percentages[-2:] == [70, 95]
    assert percentages == sorted(percentages)
    assert len(results_for(pipeline, doc.job_id)) == 1


def test_category_picked_by_the_user_wins(pipeline, photo_bytes):
    doc = pipeline.process_bytes(photo_bytes(PANTS), "pants.jpg", cloth_id="pants", category=Category.BOTTOM)
    assert doc.success and doc.suggested_category is Category.BOTTOM
    assert doc.all_segmented_items[0].category is Category.BOTTOM


def test_rotated_phone_photo_comes_out_upright(pipeline):
    upright = Image.open(PHOTOS / PANTS).convert("RGB").resize((900, 1200))  # portrait
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # the sensor's landscape pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", quality=92, exif=exif)
    doc = pipeline.process_bytes(buffer.getvalue(), "IMG_0001.jpg", cloth_id="rotated")
    assert doc.success
    cutout = read_image(pipeline.store, doc.removed_bg_image_url)
    assert cutout.size == (900, 1200)
    difference = np.abs(np.asarray(cutout.convert("RGB"), float) - np.asarray(upright, float)).mean()
    assert difference < 12  # the same picture, upright


def test_repeat_upload_is_served_from_the_cache_into_its_own_folder(pipeline, photo_bytes):
    first = pipeline.process_bytes(photo_bytes(TSHIRT), "a.jpg", user_id="u1", cloth_id="c1")
    again = pipeline.process_bytes(photo_bytes(TSHIRT), "b.jpg", user_id="u2", cloth_id="c2")
    assert again.success and again.cache_hit
    assert set(again.timings) == {"ingest"}
    assert again.job_id != first.job_id
    for url in again.urls():
        assert url.startswith(f"memory://results/u2/c2/{again.job_id}/")
        assert pipeline.store.exists(pipeline.store.key_of(url))
    assert [i.area_pixels for i in again.all_segmented_items] == [i.area_pixels for i in first.all_segmented_items]


def test_other_settings_never_read_the_cache(settings, photo_bytes):
    store = MemoryBlobStore()
    a = LocalPipeline(settings, store)
    a.process_bytes(photo_bytes(TSHIRT), "a.jpg", cloth_id="x")
    a.close()
    b = LocalPipeline(configure(settings, **{"thumbnail_side": 128}), store)
    doc = b.process_bytes(photo_bytes(TSHIRT), "a.jpg", cloth_id="y")
    b.close()
    assert doc.success and not doc.cache_hit


def test_duplicated_message_gives_one_result_without_recomputing(settings, photo_bytes):
    pipeline = LocalPipeline(configure(settings, **{"cache_enabled": False}), MemoryBlobStore(), keep_work=True)
    doc = pipeline.process_bytes(photo_bytes(TSHIRT), "a.jpg", cloth_id="dup")
    topology = load_topology()
    ingest_done = next(data for topic, data, _ in pipeline.bus.published if topic == topology.stage("remove_background").topic)
    calls = []
    chain = remove_background.chain(pipeline.ctx)
    original = chain.mask
    chain.mask = lambda image: calls.append(1) or original(image)
    pipeline.bus.publish(topology.stage("remove_background").topic, ingest_done)  # Pub/Sub redelivers
    pipeline.bus.run_until_idle()
    pipeline.close()
    assert calls == []  # the recorded outcome was forwarded, the model not run again
    assert len(results_for(pipeline, doc.job_id)) == 1


def test_expand_calls_gemini_only_where_it_helps(settings, photo_bytes):
    with FakeGemini(api_key="k") as gemini:
        configured = configure(settings, **{
            "gemini_api_key": "k", "gemini_base_url": gemini.url, "cache_enabled": False})
        pipeline = LocalPipeline(configured, MemoryBlobStore())
        whole = pipeline.process_bytes(photo_bytes(TSHIRT), "tee.jpg", cloth_id="tee")  # well inside the frame
        assert whole.success and not whole.all_expanded_items[0].expanded and gemini.calls == []
        pipeline.close()
        always = LocalPipeline(configure(configured, **{"expand_policy": ExpandPolicy.ALWAYS}), MemoryBlobStore())
        doc = always.process_bytes(photo_bytes(TSHIRT), "tee.jpg", cloth_id="tee")
        always.close()
    assert len(gemini.calls) == len(doc.all_segmented_items)
    expanded = doc.all_expanded_items[0]
    assert expanded.expanded and doc.inpainted_image_url == expanded.url
    crop = read_image(always.store, doc.all_segmented_items[0].url)
    shot = read_image(always.store, expanded.url)
    assert shot.size == (crop.width + 100, crop.height + 100)  # the 50 px white margin, filled
    assert doc.providers["expand"] == "gemini"


def test_generation_failure_keeps_the_crop_and_says_why(settings, photo_bytes):
    with FakeGemini(api_key="k") as gemini:
        gemini.fail_next("server_error", "server_error")
        configured = configure(settings, **{"gemini_api_key": "k", "gemini_base_url": gemini.url,
                                                 "expand_policy": ExpandPolicy.ALWAYS, "cache_enabled": False})
        pipeline = LocalPipeline(configured, MemoryBlobStore())
        doc = pipeline.process_bytes(photo_bytes(PANTS), "p.jpg", cloth_id="p")
        pipeline.close()
    assert doc.success
    item = doc.all_expanded_items[0]
    assert not item.expanded and item.note.startswith("kept the crop") and item.url == doc.all_segmented_items[0].url


def test_background_chain_falls_back_and_records_who_served(settings, photo_bytes):
    with FakeRemoveBg(api_key="rb") as removebg:
        removebg.fail_next(503)
        configured = configure(settings, **{"background_providers": ("removebg", "local"), "removebg_api_key": "rb",
                                                 "removebg_url": removebg.url, "cache_enabled": False})
        pipeline = LocalPipeline(configured, MemoryBlobStore())
        fell_back = pipeline.process_bytes(photo_bytes(TSHIRT), "a.jpg", cloth_id="a")
        served = pipeline.process_bytes(photo_bytes(PANTS), "b.jpg", cloth_id="b")
        pipeline.close()
    assert fell_back.success and fell_back.providers["remove_background"] == "local"
    # the reason the first provider was passed over reaches the result
    assert fell_back.providers["remove_background_skipped"].startswith("removebg: remove.bg answered 503")
    assert served.success and served.providers["remove_background"] == "removebg"
    assert "remove_background_skipped" not in served.providers


def test_messages_between_stages_are_small_and_carry_no_image_bytes(pipeline):
    for topic, data, _ in pipeline.bus.published:
        if topic in {s.topic for s in pipeline.topology.stages}:
            assert len(data) < 2048, (topic, len(data))
            assert b"base64" not in data and b"\x89PNG" not in data
