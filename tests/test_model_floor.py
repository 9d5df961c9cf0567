"""The model floor (docs/floor.md): graphs derived for smaller input sides, their pinned checksums,
the default's quality on a CCP test photo, and the pre-optimised graph a cold start loads."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
from PIL import Image

from closet_pipeline import fetch_model
from shared.errors import ModelUnavailable
from shared.media import model_weights
from shared.providers.background import local_isnet
from shared.providers.background.local_isnet import LocalIsnetRemover
from tests.conftest import DATA

CCP_PHOTO, CCP_MASK = DATA / "ccp" / "0072.jpg", DATA / "ccp" / "0072.png"


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def derived_side(settings) -> int:
    """The default's side when it is a derived one, else the smallest measured side."""
    return settings.model_input_side if settings.model_input_side != model_weights.PUBLISHED_SIDE else 640


def test_derived_graph_is_the_pinned_one(settings):
    """fetch-model's derivation is deterministic and gives the bytes whose sha256 is pinned."""
    side = derived_side(settings)
    source = fetch_model.fetch(settings.model_dir, settings.model_variant, log=lambda _: None)
    data = fetch_model.reshape(source, side)
    assert hashlib.sha256(data).hexdigest() == model_weights.DERIVED_SHA256[(settings.model_variant, side)]
    assert fetch_model.reshape(source, side) == data


def test_derived_graph_checksum_is_checked_at_load(tmp_path, settings):
    side = derived_side(settings)
    stale = model_weights.cached_path(tmp_path, settings.model_variant, side)
    stale.write_bytes(b"an older derivation")
    with pytest.raises(ModelUnavailable) as raised:
        model_weights.resolve(None, tmp_path, settings.model_variant, side)
    assert "sha256" in raised.value.message and "closet-pipeline fetch-model" in raised.value.message


def test_sides_that_do_not_scale_exactly_are_refused():
    for side in (700, 1088, 192):
        with pytest.raises(ValueError, match="multiple of 64"):
            model_weights.check_side(side)


def test_a_graph_of_another_side_is_refused(settings):
    """A 1024 graph run at another side would fail deep in onnxruntime; say which setting is wrong."""
    published = fetch_model.fetch(settings.model_dir, settings.model_variant, log=lambda _: None)
    remover = LocalIsnetRemover(published, settings.onnx_threads, side=640)
    with pytest.raises(ModelUnavailable, match="CLOSET_MODEL_INPUT_SIDE is 640"):
        remover.mask(Image.new("RGB", (64, 64)))


@pytest.fixture(scope="module")
def ccp_photo():
    return Image.open(CCP_PHOTO).convert("RGB"), np.asarray(Image.open(CCP_MASK)) != 0


def test_default_keeps_the_ccp_foreground(settings, ccp_photo):
    """The default setting's foreground on a CCP test photo is as good as the published graph's
    (small, 1024, LANCZOS) within 0.01 (the 30-photo gate in docs/floor.md is 0.005 on the mean)."""
    photo, truth = ccp_photo
    default = np.asarray(LocalIsnetRemover.from_settings(settings).mask(photo)) >= 128
    published = fetch_model.fetch(settings.model_dir, settings.model_variant, log=lambda _: None)
    today = np.asarray(LocalIsnetRemover(published, settings.onnx_threads, resampling="lanczos").mask(photo)) >= 128
    assert iou(today, truth) > 0.9, f"the published graph's IoU {iou(today, truth):.4f}"
    assert iou(default, truth) >= iou(today, truth) - 0.01, (iou(default, truth), iou(today, truth))


def test_pre_optimised_graph_is_loaded_and_gives_the_same_mask(tmp_path, settings, ccp_photo):
    """What packaging ships beside the model is picked up, and the mask does not change."""
    photo, _ = ccp_photo
    model = LocalIsnetRemover.from_settings(settings).model_path
    copy = tmp_path / model.name
    shutil.copyfile(model, copy)
    plain = np.asarray(LocalIsnetRemover(copy, settings.onnx_threads, settings.model_input_side).mask(photo))
    local_isnet.save_optimised(copy, local_isnet.optimised_path(copy))
    remover = LocalIsnetRemover(copy, settings.onnx_threads, settings.model_input_side)
    optimised = np.asarray(remover.mask(photo))
    assert remover._get_session()._model_path == str(local_isnet.optimised_path(copy))
    assert np.abs(optimised.astype(int) - plain).max() <= 2
