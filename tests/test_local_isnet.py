"""The local IS-Net provider against rembg's published reference, and its one-session-per-process rule."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from shared.errors import ModelUnavailable
from shared.media import matting, model_weights
from shared.providers.background import build_background_chain
from shared.providers.background.local_isnet import LocalIsnetRemover
from tests.conftest import DATA


@pytest.fixture(scope="module")
def remover(settings) -> LocalIsnetRemover:
    return LocalIsnetRemover.from_settings(settings)


@pytest.fixture(scope="module")
def anime_girl(remover) -> tuple[np.ndarray, np.ndarray]:
    """IS-Net's mask of rembg's sample photo (computed once) and rembg's published foreground."""
    photo = Image.open(DATA / "rembg" / "anime-girl-1.jpg").convert("RGB")
    reference = np.asarray(Image.open(DATA / "rembg" / "anime-girl-1.isnet-general-use.png").getchannel("A")) > 127
    return np.asarray(remover.mask(photo)), reference


def test_reproduces_rembg_reference_alpha(anime_girl):
    alpha, reference = anime_girl
    mask = alpha > 127
    assert mask.shape == reference.shape
    iou = (mask & reference).sum() / (mask | reference).sum()
    assert iou >= 0.99, f"IoU {iou:.4f} against rembg's isnet-general-use output"


def test_matting_keeps_rembg_reference_foreground(anime_girl):
    """Making the inside opaque must not swallow background: still the reference's foreground."""
    alpha, reference = anime_girl
    mask = matting.solid_alpha(alpha) > 127
    iou = (mask & reference).sum() / (mask | reference).sum()
    assert iou >= 0.99, f"IoU {iou:.4f} against rembg's isnet-general-use output after matting"


def test_session_is_created_once_and_reused(remover):
    remover.warm_up()
    session = remover._get_session()
    remover.mask(Image.new("RGB", (64, 48), (200, 30, 30)))
    assert remover._get_session() is session


def test_cached_model_matches_pinned_checksum(settings):
    path = model_weights.resolve(settings.model_path, settings.model_dir, settings.model_variant)
    assert model_weights.sha256_of(path) == model_weights.WEIGHTS[settings.model_variant].sha256


def test_missing_model_says_how_to_fix(tmp_path, settings):
    missing = settings.model_copy(update={"model_path": None, "model_dir": tmp_path})
    chain = build_background_chain(missing)  # building never fails: the photo is what fails
    with pytest.raises(ModelUnavailable) as raised:
        chain.mask(Image.new("RGB", (64, 64)))
    assert "closet-pipeline fetch-model" in raised.value.message
    assert str(tmp_path) in raised.value.message
