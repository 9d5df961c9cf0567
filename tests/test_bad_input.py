"""Bad, odd and hostile uploads: none ends in a traceback or a hang. Valid images (whatever their
encoding) are processed correctly; the rest end with `success: false`, a stable error code and a
message a person understands, without being retried and without partial results; and the
pipeline keeps serving the next photo.

Every input is generated in code by tests/corpus.py. The IS-Net model costs seconds per photo on
a small machine, so most cases are checked at the `normalise` level or fail before the model; the
full pipeline (one LocalPipeline for the whole module) runs the model for a handful of cases only.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from closet_pipeline.local_run import LocalPipeline
from shared.config import Settings
from shared.documents import ResultDocument
from shared.errors import ImageTooLarge, InvalidObjectPath
from shared.layout import parse_upload_key, results_prefix
from shared.media.image_io import normalise
from shared.messages import IngestDone, Job
from tests import corpus

USER = "u-bad-input"
SETTINGS = Settings()


# -- helpers -------------------------------------------------------------------------------------
def norm(data: bytes, settings: Settings = SETTINGS):
    return normalise(data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_pixels,
                     min_side=settings.min_side, max_side=settings.working_max_side)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64)


def mean_colour(image: Image.Image, box: tuple[int, int, int, int]) -> np.ndarray:
    left, top, right, bottom = box
    return pixels(image)[top:bottom, left:right].reshape(-1, 3).mean(axis=0)


def close_to(colour, expected, tolerance: float) -> bool:
    return float(np.abs(np.asarray(colour, float) - np.asarray(expected, float)).max()) <= tolerance


def job_of(data: bytes) -> str | None:
    try:
        return json.loads(data)["job"]["jobId"]
    except (ValueError, KeyError, TypeError, IndexError):
        return None


# What a person must never be shown: a traceback, an exception's class, the decoder's internals.
UNFRIENDLY = re.compile(r"Traceback|File \"|\b\w+(Error|Exception|Warning)\b|\w+Plugin\b|\bPIL\b|<class|\bNone\b")


def assert_human_message(message: str | None) -> None:
    assert message and message.strip(), "the failure has no message"
    assert not UNFRIENDLY.search(message), f"not a message for people: {message!r}"


class Run:
    """One module-wide pipeline plus a record of every delivery its dispatcher handled."""

    def __init__(self, pipeline: LocalPipeline) -> None:
        self.pipeline = pipeline
        self.deliveries: list[tuple[str, str | None, int]] = []  # stage, job id, delivery attempt
        handle = pipeline.dispatcher.handle

        def counting(stage_name, data, attempt=1):
            self.deliveries.append((stage_name, job_of(data), attempt))
            return handle(stage_name, data, attempt)

        pipeline.dispatcher.handle = counting  # the bus's handlers look it up on every delivery

    @property
    def topology(self):
        return self.pipeline.topology

    def published(self, topic: str, job_id: str) -> list[bytes]:
        return [data for t, data, attrs in list(self.pipeline.bus.published)
                if t == topic and (attrs.get("jobId") == job_id or job_of(data) == job_id)]

    def results(self, job_id: str) -> list[ResultDocument]:
        return [ResultDocument.model_validate_json(d) for d in self.published(self.topology.results_topic, job_id)]

    def stages_run(self, job_id: str) -> list[tuple[str, int]]:
        return [(stage, attempt) for stage, job, attempt in list(self.deliveries) if job == job_id]

    def result_keys(self, doc: ResultDocument) -> list[str]:
        return self.pipeline.store.list(results_prefix(doc.user_id, doc.cloth_id, doc.job_id))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    pipeline = LocalPipeline(Settings(), tmp_path_factory.mktemp("bad-input-store"))
    yield Run(pipeline)
    pipeline.close()


def assert_refused(run: Run, doc: ResultDocument, code: str, caplog=None) -> None:
    """A permanent failure, ended properly: once, with a code and a message, nothing partial left."""
    assert doc.success is False, f"expected {code}, the job succeeded"
    assert doc.error_code == code, f"expected {code}, got {doc.error_code}: {doc.error_message}"
    assert_human_message(doc.error_message)
    assert doc.removed_bg_image_url is None and doc.all_segmented_items == []
    # Nothing partial for the app to read: only the failed result document itself.
    prefix = results_prefix(doc.user_id, doc.cloth_id, doc.job_id)
    assert run.result_keys(doc) == [prefix + "result.json"]
    stored = ResultDocument.model_validate_json(run.pipeline.store.read(prefix + "result.json").data)
    assert (stored.success, stored.error_code) == (False, code)
    # A permanent error is not retried: every stage it reached ran once, on its first delivery,
    # nothing was dead-lettered and exactly one result was published.
    stages = run.stages_run(doc.job_id)
    assert stages and stages[0] == ("ingest", 1)
    assert all(attempt == 1 for _, attempt in stages), stages
    assert max(Counter(stage for stage, _ in stages).values()) == 1, stages
    assert run.published(run.topology.dead_letter_topic, doc.job_id) == []
    assert [(r.success, r.error_code) for r in run.results(doc.job_id)] == [(False, code)]
    if caplog is not None:
        retried = [r for r in caplog.records if "failed (attempt" in r.getMessage()]
        assert not retried, [r.getMessage() for r in retried]


def assert_processed(run: Run, doc: ResultDocument, size: tuple[int, int]) -> Image.Image:
    """A successful job: a cut-out the size of the upright working image and at least one garment."""
    assert doc.success is True, f"{doc.error_code}: {doc.error_message}"
    assert doc.error_code is None and not doc.cache_hit
    assert len(doc.all_segmented_items) >= 1
    prefix = results_prefix(doc.user_id, doc.cloth_id, doc.job_id)
    keys = run.result_keys(doc)
    assert prefix + "result.json" in keys and prefix + "cutout.png" in keys
    cutout = Image.open(io.BytesIO(run.pipeline.store.read(prefix + "cutout.png").data))
    assert cutout.mode == "RGBA" and cutout.size == size
    assert [r.success for r in run.results(doc.job_id)] == [True]
    assert run.published(run.topology.dead_letter_topic, doc.job_id) == []
    assert all(attempt == 1 for _, attempt in run.stages_run(doc.job_id))
    return cutout


# == 1. Valid but unusual images, at the normalise level (no model) ===============================
def test_exif_orientation_cases_cover_all_eight_values():
    # The stored pixels really differ per orientation (the corpus does not hand back the upright view).
    stored = {o: Image.open(io.BytesIO(corpus.exif_orientation(o))) for o in range(1, 9)}
    assert {o: im.getexif().get(0x0112) for o, im in stored.items()} == {o: o for o in range(1, 9)}
    assert [im.size for im in stored.values()] == [(400, 533)] * 4 + [(533, 400)] * 4


@pytest.mark.parametrize("orientation", range(1, 9), ids=lambda o: f"exif-orientation-{o}")
def test_exif_orientation_gives_the_upright_view(orientation):
    result = norm(corpus.exif_orientation(orientation))
    image = result.image
    assert image.mode == "RGB" and image.size == (400, 533)  # portrait, as the photo was taken
    assert result.source_size == ((400, 533) if orientation <= 4 else (533, 400))  # as stored
    m, w, h = corpus.MARKER, 400, 533
    inset = 10  # away from the marker's JPEG-blurred edges
    corners = {
        "top-left": (inset, inset, m - inset, m - inset),
        "top-right": (w - m + inset, inset, w - inset, m - inset),
        "bottom-left": (inset, h - m + inset, m - inset, h - inset),
        "bottom-right": (w - m + inset, h - m + inset, w - inset, h - inset),
    }
    colours = {name: mean_colour(image, box) for name, box in corners.items()}
    assert close_to(colours["top-left"], corpus.RED, 20), colours
    assert close_to(colours["top-right"], corpus.BLUE, 20), colours
    for name in ("bottom-left", "bottom-right"):
        assert not close_to(colours[name], corpus.RED, 60) and not close_to(colours[name], corpus.BLUE, 60), colours
    assert "exif" not in image.info  # metadata is left behind


def test_animated_gif_uses_the_first_frame():
    result = norm(corpus.animated_gif())
    assert result.source_format == "GIF" and result.image.size == (400, 400)
    difference = np.abs(pixels(result.image) - pixels(corpus.photo(corpus.PANTS))).mean()
    assert difference < 12  # the photo (palette-quantised), not the blue second frame


def test_animated_webp_uses_the_first_frame():
    result = norm(corpus.animated_webp())
    assert result.source_format == "WEBP" and result.image.size == (200, 200)
    difference = np.abs(pixels(result.image) - pixels(corpus.photo(corpus.PANTS).resize((200, 200)))).mean()
    assert difference < 12


def test_cmyk_jpeg_becomes_the_same_rgb_photo():
    result = norm(corpus.cmyk_jpeg())
    assert result.source_format == "JPEG" and result.image.mode == "RGB" and result.image.size == (400, 442)
    assert np.abs(pixels(result.image) - pixels(corpus.photo(corpus.TSHIRT))).mean() < 8


def test_ycck_jpeg_keeps_its_colours():
    data = corpus.ycck_jpeg()
    assert Image.open(io.BytesIO(data)).info.get("adobe_transform") == 2  # really YCCK
    image = norm(data).image
    assert image.mode == "RGB" and image.size == (128, 128)
    boxes = {"top_left": (8, 8, 56, 56), "top_right": (72, 8, 120, 56),
             "bottom_left": (8, 72, 56, 120), "bottom_right": (72, 72, 120, 120)}
    for quarter, colour in corpus.ycck_colours().items():
        assert close_to(mean_colour(image, boxes[quarter]), colour, 12), quarter


def test_16_bit_greyscale_png_is_scaled_not_clipped():
    image = norm(corpus.gray16_png()).image
    row = pixels(image)[32]
    assert np.all(row[:, 0] == row[:, 1]) and np.all(row[:, 1] == row[:, 2])  # still grey
    assert row[0, 0] <= 1 and row[-1, 0] >= 254 and abs(row[128, 0] - 128) <= 2  # the full ramp, in order
    assert np.all(np.diff(row[:, 0]) >= 0)


def test_16_bit_rgb_png_keeps_every_colour():
    data = corpus.rgb16_png()
    assert data[24:26] == b"\x10\x02"  # IHDR: 16 bits, truecolour
    image = norm(data).image
    assert np.array_equal(pixels(image), pixels(corpus.photo(corpus.TSHIRT)))


def test_palette_png_transparency_is_flattened_onto_white():
    image = norm(corpus.palette_png_with_transparency()).image
    assert close_to(mean_colour(image, (0, 0, 32, 64)), (255, 255, 255), 0)
    assert close_to(mean_colour(image, (32, 0, 64, 64)), corpus.RED, 0)


def test_grey_with_alpha_png_is_flattened_onto_white():
    image = norm(corpus.la_png()).image
    assert close_to(mean_colour(image, (0, 0, 64, 32)), (60, 60, 60), 0)
    assert close_to(mean_colour(image, (0, 32, 64, 64)), (255, 255, 255), 0)


@pytest.mark.parametrize("case, fmt, size, photo_name", [
    ("heic_named_jpg", "HEIF", (400, 534), corpus.TALL_B),
    ("avif_named_jpg", "AVIF", (200, 200), corpus.PANTS),
], ids=["heic-named-jpg", "avif-named-jpg"])
def test_format_is_sniffed_from_the_bytes_not_the_name(case, fmt, size, photo_name):
    result = norm(getattr(corpus, case)())
    assert result.source_format == fmt and result.image.size == size
    expected = corpus.photo(photo_name).resize(size)
    assert np.abs(pixels(result.image) - pixels(expected)).mean() < 10


def test_huge_exif_block_is_read_past_and_left_behind():
    data = corpus.huge_exif()
    exif_bytes = Image.open(io.BytesIO(data)).info["exif"]
    assert len(exif_bytes) > 55_000  # ~60 KB of UserComment and MakerNote
    result = norm(data)
    assert result.image.size == (400, 533) and result.image.info == {}
    assert np.abs(pixels(result.image) - pixels(corpus.photo(corpus.TALL_A))).mean() < 6


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")  # Pillow's, and expected here
def test_garbage_exif_block_does_not_stop_a_valid_photo():
    result = norm(corpus.corrupt_exif())
    assert result.image.size == (400, 400)
    assert np.abs(pixels(result.image) - pixels(corpus.photo(corpus.PANTS))).mean() < 6


def test_a_900_megapixel_header_is_refused_without_decoding():
    data = corpus.png_30000x30000_header()
    assert len(data) < 200
    started = time.perf_counter()
    with pytest.raises(ImageTooLarge) as refused:
        norm(data)
    assert refused.value.code == "IMAGE_TOO_LARGE"
    assert time.perf_counter() - started < 1.0  # from the header: 900 MP were never allocated


# == 2. Object names ==============================================================================
@pytest.mark.parametrize("key", [
    "uploads/../cloth-1/photo.jpg",
    "uploads/user-1/../photo.jpg",
    "uploads/user-1/cloth-1/../../../etc/passwd",
    "uploads/user-1/cloth-1/..",
    "uploads/user-1/cloth-1/.",
    "uploads/user 1/cloth-1/photo.jpg",
    "uploads/user-1/cloth 1/photo.jpg",
    "uploads/usér/cloth-1/photo.jpg",
    "uploads/user-1/衣服/photo.jpg",
    "uploads/user-1/cloth.1/photo.jpg",
    "uploads//cloth-1/photo.jpg",
    "uploads/user-1//photo.jpg",
    "uploads/user-1/cloth-1/",
    "uploads/" + "u" * 65 + "/cloth-1/photo.jpg",
    "results/user-1/cloth-1/photo.jpg",
    "uploads/user-1/cloth-1/sub/photo.jpg",
    "uploads/user-1/cloth-1/pho\x00to.jpg",
    "uploads/user-1/cloth-1/photo\n.jpg",
    "/uploads/user-1/cloth-1/photo.jpg",
], ids=["dotdot-user", "dotdot-cloth", "dotdot-file-escape", "file-dotdot", "file-dot", "space-in-user",
        "space-in-cloth", "unicode-user", "unicode-cloth", "dot-in-cloth", "empty-user", "empty-cloth",
        "empty-file", "user-too-long", "wrong-area", "nested-file", "nul-in-file", "newline-in-file",
        "leading-slash"])
def test_bad_object_names_are_refused(key):
    with pytest.raises(InvalidObjectPath) as refused:
        parse_upload_key(key)
    assert refused.value.code == "INVALID_OBJECT_PATH"
    assert_human_message(refused.value.message)


@pytest.mark.parametrize("file_name", [
    "my photo.jpg", "IMG 0001 (2).HEIC", "été à la plage.jpg", "毛衣 冬天.png", "👕 shirt.webp", "photo..jpg",
], ids=["spaces", "spaces-brackets", "accents", "cjk", "emoji", "double-dot-in-name"])
def test_spaces_and_unicode_in_the_file_name_are_allowed(file_name):
    parsed = parse_upload_key(f"uploads/user-1/cloth_1/{file_name}")
    assert (parsed.user_id, parsed.cloth_id, parsed.file_name) == ("user-1", "cloth_1", file_name)


# == 3. Malformed stage messages ==================================================================
def _ingest_done(job_id: str) -> dict:
    job = Job(job_id=job_id, cloth_id=f"cloth-{job_id}", user_id=USER, upload=f"uploads/{USER}/cloth-{job_id}/a.jpg")
    message = IngestDone(job=job, working_image=f"work/{job_id}/working.png", cache_key="k" * 32, width=400, height=533)
    return json.loads(message.to_json())


def _missing_field(body: dict) -> dict:
    del body["workingImage"]
    return body


def _extra_field(body: dict) -> dict:
    return {**body, "colourSpace": "sRGB"}


def _wrong_schema_version(body: dict) -> dict:
    return {**body, "schemaVersion": 2}


@pytest.mark.parametrize("job_id, breaks", [
    ("msg-missing-field", _missing_field),
    ("msg-extra-field", _extra_field),
    ("msg-schema-v2", _wrong_schema_version),
], ids=["missing-field", "extra-field", "wrong-schema-version"])
def test_malformed_message_with_a_readable_job_ends_that_job(run, job_id, breaks):
    data = json.dumps(breaks(_ingest_done(job_id))).encode()
    for _ in range(2):  # and a redelivery of the same message changes nothing
        run.pipeline.dispatcher.handle("remove_background", data)  # no exception
        run.pipeline.bus.run_until_idle(timeout_s=30)
    results = run.results(job_id)
    assert [(r.success, r.error_code) for r in results] == [(False, "INVALID_MESSAGE")]  # published once
    assert_human_message(results[0].error_message)
    prefix = results_prefix(USER, f"cloth-{job_id}", job_id)
    assert run.pipeline.store.list(prefix) == [prefix + "result.json"]
    progress = [json.loads(d) for d in run.published(run.topology.progress_topic, job_id)]
    assert progress and progress[-1]["status"] == "FAILED"
    assert run.published(run.topology.stage("segment").topic, job_id) == []  # the stage never ran


@pytest.mark.parametrize("data", [
    b"",
    b"not json at all",
    b"\xff\xfe\x00binary",
    b"[1, 2, 3]",
    b'{"schemaVersion": 1}',
    b'{"schemaVersion": 1, "job": {"clothId": "c", "userId": "u", "upload": "uploads/u/c/a.jpg"}}',
    b'{"schemaVersion": 1, "job": {"jobId": "../../etc", "clothId": "c", "userId": "u", "upload": "x"}}',
], ids=["empty", "not-json", "binary", "json-array", "no-job", "job-without-id", "job-id-traversal"])
def test_message_without_a_readable_job_is_dropped_with_an_error_log(run, caplog, data):
    published_before = len(run.pipeline.bus.published)
    with caplog.at_level(logging.ERROR, logger="closet.dispatch"):
        run.pipeline.dispatcher.handle("remove_background", data)  # no exception
    run.pipeline.bus.run_until_idle(timeout_s=30)
    assert len(run.pipeline.bus.published) == published_before  # nothing published, no result for anyone
    errors = [r for r in caplog.records if r.name == "closet.dispatch" and r.levelno >= logging.ERROR]
    assert errors and "refused" in errors[0].getMessage()


# == 4. Bad uploads through the whole pipeline ====================================================
BAD_UPLOADS = [
    # case in the corpus, file name the app sent, expected code
    ("empty", "IMG_0001.jpg", "EMPTY_FILE"),
    ("one_byte", "IMG_0002.jpg", "UNSUPPORTED_FORMAT"),
    ("text_named_jpg", "jumper.jpg", "UNSUPPORTED_FORMAT"),
    ("html_page", "photo.jpg", "UNSUPPORTED_FORMAT"),
    ("zip_archive", "photos.zip", "UNSUPPORTED_FORMAT"),
    ("pdf_document", "receipt.pdf", "UNSUPPORTED_FORMAT"),
    ("svg_external_reference", "logo.svg", "UNSUPPORTED_FORMAT"),
    ("bmp_image", "scan.bmp", "UNSUPPORTED_FORMAT"),
    ("random_bytes", "IMG_0003.jpg", "UNSUPPORTED_FORMAT"),
    ("truncated_jpeg", "IMG_0004.jpg", "CORRUPT_IMAGE"),
    ("jpeg_corrupt_huffman_table", "IMG_0005.jpg", "CORRUPT_IMAGE"),
    ("png_bad_crc", "shirt.png", "CORRUPT_IMAGE"),
    ("truncated_png", "shirt.png", "CORRUPT_IMAGE"),
    ("truncated_avif", "PXL_0001.avif", "CORRUPT_IMAGE"),
    ("png_text_chunk_bomb", "shirt.png", "CORRUPT_IMAGE"),
    ("png_30000x30000_header", "huge.png", "IMAGE_TOO_LARGE"),
    ("one_by_one", "pixel.png", "IMAGE_TOO_SMALL"),
    ("strip_20000x10", "strip.png", "IMAGE_TOO_SMALL"),
]


@pytest.mark.timeout(30)  # a hang fails the test instead of stalling the run
@pytest.mark.parametrize("case, file_name, code", BAD_UPLOADS, ids=[c[0].replace("_", "-") for c in BAD_UPLOADS])
def test_bad_upload_fails_cleanly_before_the_model(run, caplog, case, file_name, code):
    cache_before = run.pipeline.store.list("cache/")
    doc = run.pipeline.process_bytes(getattr(corpus, case)(), file_name, user_id=USER, cloth_id=case)
    assert_refused(run, doc, code, caplog)
    assert [stage for stage, _ in run.stages_run(doc.job_id)] == ["ingest"]  # refused at ingest
    assert run.pipeline.store.list("cache/") == cache_before  # a failure is never cached


@pytest.mark.timeout(30)
def test_file_over_the_byte_limit_is_refused(tmp_path, caplog):
    limited = Run(LocalPipeline(Settings(max_upload_bytes=1_000_000), tmp_path))
    try:
        data = corpus.over_byte_limit(1_000_000)
        doc = limited.pipeline.process_bytes(data, "big.png", user_id=USER, cloth_id="over-limit")
        assert_refused(limited, doc, "FILE_TOO_LARGE", caplog)
        assert "1 MB" in doc.error_message  # the limit, said in a unit people use
    finally:
        limited.pipeline.close()


@pytest.mark.timeout(60)
def test_fully_transparent_png_has_no_garment(run, caplog):
    # Flattened onto white it is a blank 800x800 picture; there is nothing in it to cut out.
    data = corpus.fully_transparent_png()
    doc = run.pipeline.process_bytes(data, "sticker.png", user_id=USER, cloth_id="transparent")
    assert_refused(run, doc, "NO_GARMENT_FOUND", caplog)


@pytest.mark.timeout(60)
def test_plain_wall_has_no_garment(run, caplog):
    # Found by running it: on this gently noisy beige wall IS-Net predicts background nearly
    # everywhere (raw output mean ~0.005, 26 of 129600 pixels over the 0.5 threshold, no part left
    # after the segmenter's opening), so the honest and deterministic outcome is NO_GARMENT_FOUND,
    # after the model ran: ingest, remove_background and segment once each, nothing retried.
    doc = run.pipeline.process_bytes(corpus.plain_wall(), "wall.jpg", user_id=USER, cloth_id="plain-wall")
    assert_refused(run, doc, "NO_GARMENT_FOUND", caplog)
    assert [stage for stage, _ in run.stages_run(doc.job_id)] == ["ingest", "remove_background", "segment"]


# == 5. Unusual valid uploads through the whole pipeline ==========================================
@pytest.mark.timeout(60)
def test_exif_rotated_photo_is_processed_upright(run):
    doc = run.pipeline.process_bytes(corpus.exif_orientation(6), "IMG_0042.jpg", user_id=USER, cloth_id="exif-6")
    cutout = assert_processed(run, doc, (400, 533))
    assert close_to(mean_colour(cutout, (10, 10, 54, 54)), corpus.RED, 20)  # the marker, top left
    assert close_to(mean_colour(cutout, (346, 10, 390, 54)), corpus.BLUE, 20)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case, file_name, size", [
    ("cmyk_jpeg", "print-scan.jpg", (400, 442)),
    ("heic_named_jpg", "IMG_2041.jpg", (400, 534)),
    ("animated_gif", "shirt.gif", (400, 400)),
], ids=["cmyk-jpeg", "heic-named-jpg", "animated-gif"])
def test_unusual_encoding_is_processed(run, case, file_name, size):
    doc = run.pipeline.process_bytes(getattr(corpus, case)(), file_name, user_id=USER, cloth_id=case)
    cutout = assert_processed(run, doc, size)
    if case == "animated_gif":  # the photo of the first frame, not the blue card of the second
        assert not close_to(pixels(cutout).reshape(-1, 3).mean(axis=0), corpus.BLUE, 60)


@pytest.mark.timeout(60)
def test_pipeline_keeps_serving_after_all_of_the_above(run):
    # Runs last: every bad upload and malformed message above went through this same pipeline.
    # A 16-bit RGB PNG, under a file name with spaces and unicode.
    data = corpus.rgb16_png()
    doc = run.pipeline.process_bytes(data, "mon pull 毛衣 (16 bit).png", user_id=USER, cloth_id="after-all")
    assert_processed(run, doc, (400, 442))
    stages = [stage for stage, _ in run.stages_run(doc.job_id)]
    assert stages == ["ingest", "remove_background", "segment", "expand", "deliver"]



def test_the_worst_allowed_png_decodes_within_ingests_memory():
    """Issue 11, item 17: a 600 KB 7071x7071 16-bit RGBA PNG (under the 50 MP limit) peaked at 543 MiB
    in a 512 MiB function. Measured in a fresh process, as the function would run it."""
    from closet_pipeline.bench.ingest_memory import measure

    result = measure(7071)
    assert result["file_bytes"] < 1_000_000 and result["size"] == [1200, 1200]
    assert result["peak_mib"] < 0.75 * result["deployed_mib"], result
    assert result["centre"] == [192, 32, 32] and result["corner"] == [255, 255, 255]  # the patch, on white
