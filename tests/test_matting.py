"""shared.media.matting on real IS-Net masks of the examples, and on drawn masks for the hole rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from closet_pipeline.bench.matting_quality import edge_bands, half_transparent, interior, redness_on_white
from shared.media import matting
from shared.providers.background.local_isnet import LocalIsnetRemover

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def isnet(settings):
    """The real IS-Net masks of the examples, computed once for the module (about 3 s each)."""
    remover = LocalIsnetRemover.from_settings(settings)
    masks: dict[str, tuple[Image.Image, Image.Image]] = {}

    def get(name: str) -> tuple[Image.Image, Image.Image]:
        if name not in masks:
            photo = Image.open(EXAMPLES / f"{name}.jpg").convert("RGB")
            masks[name] = (photo, remover.mask(photo))
        return masks[name]

    return get


@pytest.mark.parametrize("name", ["pants", "hat", "shoes"])
def test_examples_are_opaque_inside_their_outline(isnet, name):
    photo, mask = isnet(name)
    raw = np.asarray(mask)
    region = interior(raw)
    before = half_transparent(raw, region)
    after_alpha = np.asarray(matting.cutout(photo, mask))[..., 3]
    after = half_transparent(after_alpha, region)
    assert before > 0.10, f"{name}: IS-Net's mask no longer shows the defect ({before:.1%}): the test proves nothing"
    assert after < 0.005, f"{name}: {after:.2%} of the interior still half transparent (was {before:.1%})"
    assert (after_alpha >= raw).all(), "alpha only ever goes up"


def test_t_shirt_edge_loses_the_bedsheets_red(isnet):
    photo, mask = isnet("t-shirt")
    before, after = np.array(photo.convert("RGBA")), np.asarray(matting.cutout(photo, mask))
    before[..., 3] = np.asarray(mask)
    bands = edge_bands(np.asarray(mask))
    outer, inner, garment = bands["outer"], bands["inner"], bands["garment"]
    own = redness_on_white(before, garment)
    assert redness_on_white(before, outer) > 10, "the raw cut-out no longer shows a red fringe: the test proves nothing"
    assert redness_on_white(after, outer) < 5
    # Inside the outline the edge keeps only a little more red than the (brownish) garment itself.
    assert redness_on_white(after, inner) < min(redness_on_white(before, inner), own + 10)


def test_only_soft_pixels_change_colour(isnet):
    photo, mask = isnet("t-shirt")
    rgb = np.asarray(photo)
    out = np.asarray(matting.cutout(photo, mask))
    alpha = out[..., 3]
    assert (alpha == 0).any() and (alpha == 255).any()
    assert (out[..., :3][alpha == 0] == rgb[alpha == 0]).all(), "the photo under alpha 0 is read by later stages"
    assert (out[..., :3][alpha == 255] == rgb[alpha == 255]).all()
    soft = (alpha > 0) & (alpha < 255)
    assert (out[..., :3][soft] != rgb[soft]).any(axis=-1).mean() > 0.5


def drawn_bag() -> np.ndarray:
    """A bag with a handle: the body half transparent in places, a real hole under the handle, small
    and larger enclosed patches IS-Net was unsure of, and a slot open to the outside (as between legs)."""
    mask = Image.new("L", (400, 400), 0)
    draw = ImageDraw.Draw(mask)
    draw.ellipse((100, 20, 300, 220), fill=255)        # handle ...
    draw.ellipse((140, 60, 260, 180), fill=0)          # ... around a real hole
    draw.rectangle((60, 150, 340, 380), fill=255)      # body
    draw.rectangle((330, 230, 340, 380), fill=0)       # slot open to the right edge
    draw.rectangle((300, 200, 340, 230), fill=0)
    alpha = np.array(mask.filter(ImageFilter.GaussianBlur(1.5)))
    alpha[250:351, 90:201] = 150                       # IS-Net's half-sure patch inside
    alpha[250:301, 230:281] = 100                      # an enclosed patch it was a little less sure of
    alpha[330:335, 250:255] = 120                      # a speck just under the threshold
    alpha[330:335, 300:305] = 100                      # a small patch (25 px) of 0.39: too small to judge
    return alpha


def test_real_hole_stays_transparent_while_the_body_turns_opaque():
    raw = drawn_bag()
    after = matting.solid_alpha(raw)
    assert (after[75:140, 170:230] == 0).all(), "the hole under the handle shows the background"
    assert (after[255:345, 95:195] == 255).all(), "the half-sure patch inside the body becomes opaque"
    assert (after[260:290, 240:270] == 255).all(), "a large enclosed patch of mean alpha 0.39 joins the garment"
    assert (after[330:335, 250:255] == 255).all(), "a speck just under 0.5 joins the garment"
    assert (after[330:335, 300:305] == 100).all(), "a small patch of mean alpha 0.39 is left as it is"
    assert (after[140:180, 100:300] >= raw[140:180, 100:300]).all()
    window = (slice(70, 145), slice(130, 270))
    rim = (raw[window] > 0) & (raw[window] < 200)
    assert rim.sum() > 100 and (after[window][rim] == raw[window][rim]).all(), "the hole's soft rim is kept"


def test_background_between_legs_stays_transparent():
    mask = Image.new("L", (300, 400), 0)
    draw = ImageDraw.Draw(mask)
    draw.rectangle((60, 20, 240, 150), fill=255)
    draw.rectangle((60, 150, 140, 390), fill=200)      # a leg, half sure
    draw.rectangle((146, 150, 240, 390), fill=255)     # the other leg, 6 px apart
    raw = np.asarray(mask)
    after = matting.solid_alpha(raw)
    assert (after[200:380, 142:144] == 0).all(), "the gap between the legs is background, however narrow"
    assert (after[160:380, 70:130] == 255).all()


def test_empty_and_full_masks_pass_through():
    photo = np.full((50, 60, 3), 90, np.uint8)
    for value in (0, 255):
        alpha = np.full((50, 60), value, np.uint8)
        assert (matting.solid_alpha(alpha) == alpha).all()
        assert (matting.foreground_colours(photo, alpha) == photo).all()


def test_large_photo_is_worked_out_at_the_working_size():
    """A mask above WORK_SIDE goes through the scaled path and gives the same shapes."""
    small = drawn_bag()
    big = np.asarray(Image.fromarray(small).resize((2400, 2400), Image.Resampling.BILINEAR))
    after = matting.solid_alpha(big)
    assert after.shape == big.shape
    assert (after[450:840, 1020:1380] == 0).all()
    assert (after[1530:2070, 570:1170] == 255).all()
    rgb = np.zeros((2400, 2400, 3), np.uint8)
    rgb[big >= 128] = (20, 20, 200)
    rgb[big < 128] = (220, 30, 30)
    out = matting.foreground_colours(rgb, after)
    soft = (after > 0) & (after < 255)
    assert soft.any()
    assert out[soft][:, 2].mean() > out[soft][:, 0].mean(), "soft pixels take the garment's blue, not the red background"


def test_mask_of_another_size_is_refused():
    with pytest.raises(ValueError, match="differ in size"):
        matting.cutout(Image.new("RGB", (40, 30)), Image.new("L", (30, 40)))
