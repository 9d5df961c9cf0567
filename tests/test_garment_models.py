"""The shipped garment models on real photos: categories and labels for single items, a worn outfit
split into its garments, the path chosen by image type, the user's pick, and refused model files."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from shared.categories import (
    CCP_CATEGORIES,
    CLOTHING_CATEGORIES,
    CLOTHING_LABELS,
    ccp_class,
    clothing_category,
    segformer_category,
)
from shared.config import Settings
from shared.documents import ResultDocument, SegmentedItem
from shared.errors import ModelUnavailable
from shared.media import matting
from shared.messages import Category, ImageType
from shared.providers.background.local_isnet import LocalIsnetRemover
from shared.providers.garments import weights
from shared.providers.garments.classifier import GarmentClassifier
from shared.providers.segmentation import build_segmenter
from tests.conftest import DATA

CLOTHING = DATA / "clothing"
CCP = DATA / "ccp"
EXAMPLES = DATA.parents[1] / "examples"


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
        cutout = matting.cutout(photo, remover.mask(photo))  # as remove_background makes it
        return cutout

    return cut


# -- the mappings (README "Categories") ------------------------------------------------------------

def test_clothing_labels_map_to_the_issues_categories():
    expected = {
        Category.TOP: {"T-Shirt", "Longsleeve", "Shirt", "Polo", "Undershirt", "Blouse", "Top", "Body", "Hoodie",
                       "Blazer", "Outwear", "Dress"},
        Category.BOTTOM: {"Pants", "Shorts", "Skirt"},
        Category.SHOES: {"Shoes"},
        Category.ACC: {"Hat", "Other"},
    }
    assert {c: {label for label in CLOTHING_LABELS if clothing_category(label) is c} for c in Category} == expected
    with open(CLOTHING / "labels.csv") as handle:
        assert {row["label"] for row in csv.DictReader(handle)} <= set(CLOTHING_CATEGORIES)


def test_every_ccp_label_is_a_category_or_no_item():
    names = [line.split("\t")[1] for line in (CCP / "labels.txt").read_text().strip().splitlines()]
    assert len(names) == 59
    assert {c: {n for n in names if CCP_CATEGORIES.get(n) is c} for c in Category} == {
        Category.TOP: {"blazer", "blouse", "bodysuit", "cape", "cardigan", "coat", "dress", "hoodie", "jacket", "jumper",
                       "romper", "shirt", "suit", "sweater", "sweatshirt", "t-shirt", "top", "vest"},
        Category.BOTTOM: {"jeans", "leggings", "pants", "shorts", "skirt"},
        Category.SHOES: {"boots", "clogs", "flats", "heels", "loafers", "pumps", "sandals", "shoes", "sneakers", "wedges"},
        Category.ACC: {"accessories", "bag", "belt", "hat", "purse", "scarf", "sunglasses", "glasses", "tie", "wallet",
                       "gloves"},
    }
    # No item: the parser learns them as background, the wearer or hair, or not at all.
    for name in ("null", "skin", "hair", "socks", "stockings", "tights", "bra", "necklace"):
        assert ccp_class(name) in {"background", "body", "hair", None}
    with pytest.raises(KeyError):
        ccp_class("spacesuit")


def test_segformer_labels_keep_their_mapping():
    assert segformer_category("Upper-clothes") is Category.TOP and segformer_category("dress") is Category.TOP
    assert segformer_category("skirt") is Category.BOTTOM and segformer_category("left_shoe") is Category.SHOES
    assert segformer_category("bag") is Category.ACC


# -- single items ----------------------------------------------------------------------------------

def test_classifier_on_60_test_photos_meets_the_floor():
    with open(CLOTHING / "labels.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 60
    crops = []
    for row in rows:
        with Image.open(CLOTHING / row["file"]) as photo:
            crops.append(photo.convert("RGB"))
    predictions = GarmentClassifier().classify(crops)
    coarse = np.mean([p.category is clothing_category(r["label"]) for p, r in zip(predictions, rows)])
    fine = np.mean([p.label == r["label"] for p, r in zip(predictions, rows)])
    assert coarse >= 0.9, f"coarse accuracy {coarse:.3f} on 60 test photos"
    assert fine >= 0.6, f"fine top-1 {fine:.3f} on 60 test photos"
    assert all(0 <= p.confidence <= 1 and clothing_category(p.label) is p.category for p in predictions)


def test_a_single_item_photo_gets_category_label_and_confidence(segmenter, cut_out):
    result = segmenter.segment_photo(cut_out(EXAMPLES / "pants.jpg"), None)
    assert result.image_type is ImageType.SINGLE_ITEM  # decided: nobody in the photo
    largest = result.garments[0]
    assert largest.category is Category.BOTTOM and largest.label in {"Pants", "Shorts", "Skirt"}
    assert 0.5 <= largest.confidence <= 1


# -- worn outfits ----------------------------------------------------------------------------------

def test_a_worn_outfit_is_split_into_its_garments(segmenter, cut_out):
    truth = np.asarray(Image.open(CCP / "0072.png"))
    names = [line.split("\t")[1] for line in (CCP / "labels.txt").read_text().strip().splitlines()]
    wearer = np.isin(truth, [i for i, n in enumerate(names) if ccp_class(n) in {"body", "hair", "background"}])
    result = segmenter.segment_photo(cut_out(CCP / "0072.jpg"), ImageType.FULL_BODY)
    assert result.image_type is ImageType.FULL_BODY
    categories = [g.category for g in result.garments]
    assert Category.TOP in categories and Category.BOTTOM in categories, categories
    for garment in result.garments:
        left, top, right, bottom = garment.bbox
        solid = np.asarray(garment.crop.getchannel("A")) >= 128
        # Mostly garment: an item of skin, hair or background would be mostly `wearer` in the truth.
        assert wearer[top:bottom, left:right][solid].mean() < 0.5, (garment.label, garment.category)
        assert garment.confidence is not None and clothing_category(garment.label) is garment.category
    top = next(g for g in result.garments if g.category is Category.TOP)
    bottom = next(g for g in result.garments if g.category is Category.BOTTOM)
    assert top.bbox[1] < bottom.bbox[1]  # the top is above the bottom


def test_auto_image_type_sees_the_person(segmenter, cut_out):
    assert segmenter.segment_photo(cut_out(CCP / "0072.jpg"), None).image_type is ImageType.FULL_BODY
    assert segmenter.segment_photo(cut_out(EXAMPLES / "t-shirt.jpg"), None).image_type is ImageType.SINGLE_ITEM


def test_single_item_path_when_asked_even_for_a_person(segmenter, cut_out):
    result = segmenter.segment_photo(cut_out(CCP / "0072.jpg"), ImageType.SINGLE_ITEM)
    assert result.image_type is ImageType.SINGLE_ITEM and len(result.garments) >= 1


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
    assert {Category.TOP, Category.BOTTOM} <= {item.category for item in items}
    assert all(item.label and item.category and 0 < item.confidence <= 1 for item in items)
    assert (doc.suggested_category, doc.segmentation_label) == (items[0].category, items[0].label)
    assert items == sorted(items, key=lambda item: item.area_pixels, reverse=True)
    assert picked.success and picked.suggested_category is Category.SHOES
