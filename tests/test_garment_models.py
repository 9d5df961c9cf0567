"""The shipped garment models on real photos: the wardrobe vocabulary, single garments named and kept
whole, a worn outfit split into one item per garment with edges that follow the photo, the photo's
kind, the user's pick, and refused model files."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image, ImageDraw

from closet_pipeline.train.label_maps import CCP_TO_LABEL, CLOTHING_TO_LABEL, ccp_class
from shared.categories import BY_NAME, KINDS, LABELS, PARSER_CLASSES, VOCABULARY, category_of, labels_of_kind
from shared.config import Settings
from shared.documents import ResultDocument, SegmentedItem
from shared.errors import ModelUnavailable
from shared.media import matting
from shared.media.guided_filter import upsample
from shared.messages import Category, ImageType
from shared.providers.background.local_isnet import LocalIsnetRemover
from shared.providers.garments import weights
from shared.providers.garments.classifier import GarmentClassifier
from shared.providers.garments.parser import regions
from shared.providers.segmentation import build_segmenter
from shared.providers.segmentation.base import Garment
from shared.providers.segmentation.local_garments import together
from tests.conftest import DATA

CLOTHING = DATA / "clothing"
CCP = DATA / "ccp"
EXAMPLES = DATA.parents[1] / "examples"
CCP_NAMES = [line.split("\t")[1] for line in (CCP / "labels.txt").read_text().strip().splitlines()]


@pytest.fixture(scope="module")
def segmenter():
    segmenter = build_segmenter(Settings())
    segmenter.warm_up()
    return segmenter


@pytest.fixture(scope="module")
def cut_out():
    remover = LocalIsnetRemover.from_settings(Settings())

    def cut(path) -> Image.Image:
        with Image.open(path) as opened:
            photo = opened.convert("RGB")
        return matting.cutout(photo, remover.mask(photo))  # as remove_background makes it

    return cut


def clothing_rows() -> list[dict]:
    with open(CLOTHING / "labels.csv") as handle:
        return list(csv.DictReader(handle))


# -- the vocabulary (README "Categories") ----------------------------------------------------------

def test_the_vocabulary_names_every_kind_a_wardrobe_needs():
    assert {"outerwear", "top", "dress", "skirt", "pants", "shorts", "shoes", "bag", "hat", "belt", "scarf",
            "glasses"} <= set(KINDS)
    assert len(set(LABELS)) == len(LABELS) and set(KINDS) <= set(LABELS)
    assert PARSER_CLASSES[:3] == ("background", "skin", "hair") and PARSER_CLASSES[3:] == KINDS
    assert {item.name: item.category for item in VOCABULARY if item.name == item.kind} == {
        "outerwear": Category.TOP, "top": Category.TOP, "dress": Category.TOP, "skirt": Category.BOTTOM,
        "pants": Category.BOTTOM, "shorts": Category.BOTTOM, "shoes": Category.SHOES, "bag": Category.ACC,
        "hat": Category.ACC, "belt": Category.ACC, "scarf": Category.ACC, "glasses": Category.ACC,
        "accessory": Category.ACC}
    # A finer label belongs to its kind's category: a blazer is outerwear, a t-shirt a top.
    assert all(category_of(item.name) is category_of(item.kind) for item in VOCABULARY)
    assert labels_of_kind("outerwear") == ("outerwear", "blazer") and "t-shirt" in labels_of_kind("top")
    with pytest.raises(KeyError):
        category_of("spacesuit")


def test_both_datasets_map_onto_the_vocabulary():
    assert {row["label"] for row in clothing_rows()} <= set(CLOTHING_TO_LABEL)
    assert set(CLOTHING_TO_LABEL.values()) <= set(BY_NAME) and set(CCP_TO_LABEL.values()) <= set(BY_NAME)
    assert len(CCP_NAMES) == 59
    trained_as = {name: ccp_class(name) for name in CCP_NAMES}
    assert set(trained_as.values()) - {None} <= set(PARSER_CLASSES)
    assert {trained_as[n] for n in ("coat", "jacket", "blazer", "cardigan")} == {"outerwear"}
    assert {trained_as[n] for n in ("shirt", "blouse", "t-shirt", "sweater", "hoodie")} == {"top"}
    assert {trained_as[n] for n in ("dress", "romper")} == {"dress"}
    assert {trained_as[n] for n in ("jeans", "pants", "leggings")} == {"pants"}
    assert {trained_as[n] for n in ("boots", "heels", "sneakers", "sandals")} == {"shoes"}
    assert {trained_as[n] for n in ("bag", "purse")} == {"bag"} and trained_as["sunglasses"] == "glasses"
    # Worn but no item, or too small to learn: skin, or out of training.
    assert {trained_as[n] for n in ("skin", "socks", "tights", "stockings")} == {"skin"}
    assert trained_as["necklace"] is None and trained_as["null"] == "background"
    with pytest.raises(KeyError):
        ccp_class("spacesuit")


# -- single garments -------------------------------------------------------------------------------

def test_classifier_on_60_test_photos_meets_the_floor():
    rows = clothing_rows()
    assert len(rows) == 60
    photos = [Image.open(CLOTHING / row["file"]).convert("RGB") for row in rows]
    classifier = GarmentClassifier()
    predictions = classifier.classify(photos)
    truth = [CLOTHING_TO_LABEL[row["label"]] for row in rows]
    coarse = np.mean([p.category is category_of(t) for p, t in zip(predictions, truth)])
    fine = np.mean([p.label == t for p, t in zip(predictions, truth)])
    assert coarse >= 0.93, f"coarse accuracy {coarse:.3f} on 60 test photos"
    assert fine >= 0.75, f"label top-1 {fine:.3f} on 60 test photos"
    assert all(0 <= p.confidence <= 1 and category_of(p.label) is p.category for p in predictions)
    # None of these photos of single garments is taken for a worn outfit.
    assert not any(classifier.shows_outfit(photo) for photo in photos)


def test_a_single_garment_comes_back_whole_and_named(segmenter, cut_out):
    result = segmenter.segment_photo(cut_out(EXAMPLES / "pants.jpg"), None)
    assert result.image_type is ImageType.SINGLE_ITEM  # decided: nobody wears it
    (garment,) = result.garments
    assert (garment.label, garment.category) == ("pants", Category.BOTTOM) and 0.5 <= garment.confidence <= 1


def test_parts_lying_close_are_one_item():
    def part(left: int, top: int) -> Garment:
        return Garment(crop=Image.new("RGBA", (100, 200)), label="", category=None, area_pixels=20000,
                       bbox=(left, top, left + 100, top + 200), touches_border=False)

    assert together([part(0, 0), part(110, 0)]) == [[0, 1]]  # 10 px apart: a pair
    assert together([part(0, 0), part(0, 300), part(400, 0)]) == [[0], [1], [2]]  # laid out apart
    assert together([part(0, 0), part(110, 0), part(220, 0)]) == [[0, 1, 2]]  # a chain of close parts


def test_a_pair_of_shoes_is_one_item(segmenter, cut_out):
    result = segmenter.segment_photo(cut_out(EXAMPLES / "shoes.jpg"), None)
    assert result.image_type is ImageType.SINGLE_ITEM
    assert [(g.label, g.category) for g in result.garments] == [("shoes", Category.SHOES)]


# -- worn outfits ----------------------------------------------------------------------------------

def test_the_showcase_outfit_comes_back_as_its_five_garments(segmenter, cut_out):
    """examples/ccp-outfit.jpg is CCP photo 0072: a jacket over a shirt, a skirt, boots and a bag."""
    truth = np.asarray(Image.open(CCP / "0072.png"))
    no_item = np.isin(truth, [i for i, n in enumerate(CCP_NAMES) if ccp_class(n) in {"skin", "hair", "background"}])
    result = segmenter.segment_photo(cut_out(EXAMPLES / "ccp-outfit.jpg"), None)
    assert result.image_type is ImageType.FULL_BODY  # decided: a person wears them
    kinds = [BY_NAME[g.label].kind for g in result.garments]
    for kind in ("outerwear", "top", "skirt", "shoes", "bag"):
        assert kinds.count(kind) == 1, (kind, [g.label for g in result.garments])
    named = {BY_NAME[g.label].kind: g for g in result.garments}
    assert named["outerwear"].category is Category.TOP and named["top"].category is Category.TOP
    assert named["skirt"].category is Category.BOTTOM and named["shoes"].category is Category.SHOES
    assert named["bag"].category is Category.ACC
    for garment in result.garments:
        left, top, right, bottom = garment.bbox
        solid = np.asarray(garment.crop.getchannel("A")) >= 128
        # No item is skin, hair or background: each is mostly garment in the truth.
        assert no_item[top:bottom, left:right][solid].mean() < 0.5, garment.label
        assert garment.confidence is not None and category_of(garment.label) is garment.category
    assert named["outerwear"].bbox[1] < named["skirt"].bbox[1] < named["shoes"].bbox[1]


def test_single_item_path_when_asked_even_for_a_person(segmenter, cut_out):
    result = segmenter.segment_photo(cut_out(CCP / "0072.jpg"), ImageType.SINGLE_ITEM)
    assert result.image_type is ImageType.SINGLE_ITEM and len(result.garments) >= 1


def test_parts_of_one_kind_are_one_item_and_slivers_are_dropped():
    labels = np.zeros((200, 100), np.int64)
    skirt, shoes, top = (PARSER_CLASSES.index(k) for k in ("skirt", "shoes", "top"))
    labels[100:140, 20:45] = skirt  # a skirt an arm cuts in two ...
    labels[100:140, 50:80] = skirt
    labels[180:195, 20:35] = shoes  # ... two shoes ...
    labels[180:195, 60:75] = shoes
    labels[20:90, 20:80] = top
    labels[150:153, 90:93] = top  # ... and a 9-pixel sliver of "top" far from the top
    refined = {c: (labels == c).astype(np.float32) for c in np.unique(labels)}
    found = regions(labels, refined)
    assert [r.kind for r in found] == ["top", "skirt", "shoes"]
    assert found[0].mask.sum() == 70 * 60  # the sliver is no part of the top
    assert found[1].mask.sum() == 40 * 55 and found[2].mask.sum() == 2 * 15 * 15


def test_item_edges_follow_the_photo_not_the_coarse_map():
    photo = Image.new("RGB", (400, 300), (30, 30, 30))
    ImageDraw.Draw(photo).rectangle((203, 0, 399, 299), fill=(220, 220, 220))  # the photo's edge at x = 203
    coarse = np.zeros((1, 75, 100), np.float32)  # a quarter of the photo's resolution, as the parser gives
    coarse[0, :, 50:] = 1.0  # brought up bilinearly, its step crosses 0.5 at x = 200, 3 px off
    refined = upsample(coarse, photo)[0]
    edge = np.flatnonzero(refined[150] >= 0.5)[0]
    assert abs(edge - 203) <= 1, edge
    assert refined[150, 180] < 0.2 and refined[150, 230] > 0.8  # flat on both sides, no staircase


def test_background_removal_asks_only_for_the_mask(monkeypatch):
    remover = LocalIsnetRemover.from_settings(Settings())
    session = remover._get_session()
    asked = []
    real_run = session.run

    class Recording:
        def __getattr__(self, name):
            return getattr(session, name)

        def run(self, outputs, feed):
            asked.append(outputs)
            return real_run(outputs, feed)

    monkeypatch.setattr(remover, "_get_session", lambda: Recording())
    remover.mask(Image.new("RGB", (64, 48), (200, 10, 10)))
    assert asked == [["output"]] and session.get_outputs()[0].name == "output" and len(session.get_outputs()) > 1


# -- the user's pick -------------------------------------------------------------------------------

def _result(*categories: Category) -> ResultDocument:
    items = [SegmentedItem(label="x", category=c, confidence=0.9, area_pixels=10 - i, bbox=(0, 0, 4, 4), url="u",
                           thumbnail_url="t") for i, c in enumerate(categories)]
    return ResultDocument(job_id="j", cloth_id="c", user_id="u", success=True, suggested_category=categories[0],
                          all_segmented_items=items)


def test_the_users_pick_names_the_garment_they_photographed():
    outfit = _result(Category.TOP, Category.BOTTOM)
    assert outfit.with_pick(None) == outfit
    picked = outfit.with_pick(Category.SHOES)  # the largest is the one they photographed
    assert picked.suggested_category is Category.SHOES
    assert [i.category for i in picked.all_segmented_items] == [Category.SHOES, Category.BOTTOM]


# -- the model files -------------------------------------------------------------------------------

def test_a_model_file_with_another_sha256_is_refused(tmp_path):
    for name in (weights.CLASSIFIER, weights.PARSER):
        assert weights.verified(name) == weights.MODELS_DIR / name
        changed = bytearray((weights.MODELS_DIR / name).read_bytes())
        changed[-1] ^= 0xFF
        (tmp_path / name).write_bytes(bytes(changed))
        with pytest.raises(ModelUnavailable, match="sha256"):
            weights.session(name, tmp_path)
    with pytest.raises(ModelUnavailable, match="missing"):
        weights.verified(weights.PARSER, tmp_path / "nowhere")


# -- through the whole pipeline --------------------------------------------------------------------

def test_a_worn_outfit_through_the_pipeline_names_every_item(settings):
    from closet_pipeline.adapters.memory import MemoryBlobStore
    from closet_pipeline.local_run import LocalPipeline

    pipeline = LocalPipeline(settings, MemoryBlobStore())
    try:
        photo = (EXAMPLES / "ccp-outfit.jpg").read_bytes()
        doc = pipeline.process_bytes(photo, "outfit.jpg", cloth_id="outfit")  # image type not said: auto
        picked = pipeline.process_bytes(photo, "outfit.jpg", cloth_id="outfit2", category=Category.SHOES)
    finally:
        pipeline.close()
    assert doc.success and doc.image_type is ImageType.FULL_BODY
    items = doc.all_segmented_items
    assert {Category.TOP, Category.BOTTOM, Category.SHOES, Category.ACC} <= {item.category for item in items}
    assert all(item.label in BY_NAME and item.category is category_of(item.label) and 0 < item.confidence <= 1
               for item in items)
    assert (doc.suggested_category, doc.segmentation_label) == (items[0].category, items[0].label)
    assert items == sorted(items, key=lambda item: item.area_pixels, reverse=True)
    assert picked.success and picked.suggested_category is Category.SHOES
