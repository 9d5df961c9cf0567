"""The figures MODELS.md reports, measured through the segmenter's real path on cached cut-outs.

- Single garments (clothing photos): the auto path's items; every figure is label-balanced (each
  dataset label weighs the same, as in a check with every label equally represented).
- Worn outfits (CCP photos): the parser's label map for IoU and boundaries, the auto path's items for
  garments found, items per garment, accessory names and the decided kind.
Both the evaluation (test part) and the threshold sweep (validation part) use these functions.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from closet_pipeline.train import cutouts, data
from closet_pipeline.train.label_maps import CLOTHING_TO_LABEL, COMMON_CLOTHING
from shared.categories import BY_NAME, PARSER_CLASSES, category_of
from shared.media.matting import SOLID_ALPHA
from shared.messages import Category, ImageType
from shared.providers.garments.parser import label_map
from shared.providers.segmentation.items import full_alpha

CATEGORIES = list(Category)
# Parser class index -> category index (-1: no garment).
CLASS_CATEGORY = np.array([CATEGORIES.index(category_of(name)) if name in BY_NAME else -1 for name in PARSER_CLASSES])
ACCESSORY_KINDS = ("bag", "hat", "belt", "glasses", "scarf")
COVERED = 0.5  # a garment is found when an item of its category covers this share of its pixels
MIN_GARMENT_SHARE = 0.01  # garments covering less of the photo are not counted as present
BOUNDARY_TOLERANCE = 2  # px at CCP's resolution


# -- single garments ----------------------------------------------------------------------------

@dataclass
class SinglePhoto:
    dataset_label: str
    worn: bool  # the auto path decided FULL_BODY
    items: list[tuple[str, Category]]  # label, category; largest first

    @property
    def truth(self) -> str:
        return CLOTHING_TO_LABEL[self.dataset_label]

    @property
    def category_right(self) -> bool:
        return bool(self.items) and self.items[0][1] == category_of(self.truth)

    @property
    def label_right(self) -> bool:
        return bool(self.items) and self.items[0][0] == self.truth


def single_photo(segmenter, path: Path, dataset_label: str) -> SinglePhoto:
    segmentation = segmenter.segment_photo(cutouts.cutout(path), None)
    return SinglePhoto(dataset_label, segmentation.image_type is ImageType.FULL_BODY,
                       [(g.label, g.category) for g in segmentation.garments])


def balanced(photos: list[SinglePhoto], value) -> float:
    """The mean of value(photo) with every dataset label weighing the same."""
    by_label = collections.defaultdict(list)
    for photo in photos:
        by_label[photo.dataset_label].append(float(value(photo)))
    return float(np.mean([np.mean(values) for values in by_label.values()])) if by_label else float("nan")


@dataclass
class SingleReport:
    photos: list[SinglePhoto]

    def coarse_accuracy(self) -> float:
        return balanced(self.photos, lambda p: p.category_right)

    def category_recall(self) -> dict[Category, float]:
        return {c: balanced([p for p in self.photos if category_of(p.truth) == c], lambda p: p.category_right)
                for c in CATEGORIES if any(category_of(p.truth) == c for p in self.photos)}

    def mean_category_recall(self) -> float:
        return float(np.mean(list(self.category_recall().values())))

    def common_label_top1(self) -> float:
        return balanced([p for p in self.photos if p.dataset_label in COMMON_CLOTHING], lambda p: p.label_right)

    def decided_worn(self) -> float:
        return balanced(self.photos, lambda p: p.worn)

    def per_label(self) -> dict[str, tuple[int, float, float]]:
        """Dataset label -> (photos, category right, label right)."""
        rows = {}
        for label in sorted({p.dataset_label for p in self.photos}):
            mine = [p for p in self.photos if p.dataset_label == label]
            rows[label] = (len(mine), float(np.mean([p.category_right for p in mine])),
                           float(np.mean([p.label_right for p in mine])))
        return rows

    def item_counts(self) -> collections.Counter:
        return collections.Counter(len(p.items) for p in self.photos)


# -- worn outfits -------------------------------------------------------------------------------

def boundary(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, structure=np.ones((3, 3), bool), border_value=1)


def boundary_f(predicted: np.ndarray, truth: np.ndarray, tolerance: int = BOUNDARY_TOLERANCE) -> float:
    """F-score of two masks' boundaries, a boundary pixel matching within `tolerance` px."""
    p, t = boundary(predicted), boundary(truth)
    if not p.any() or not t.any():
        return 0.0
    near = np.ones((2 * tolerance + 1, 2 * tolerance + 1), bool)
    precision = (p & ndimage.binary_dilation(t, near)).sum() / p.sum()
    recall = (t & ndimage.binary_dilation(p, near)).sum() / t.sum()
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


@dataclass
class WornReport:
    photos: int = 0
    decided_single: int = 0
    class_intersection: np.ndarray = field(default_factory=lambda: np.zeros(len(PARSER_CLASSES)))
    class_union: np.ndarray = field(default_factory=lambda: np.zeros(len(PARSER_CLASSES)))
    category_intersection: np.ndarray = field(default_factory=lambda: np.zeros(len(CATEGORIES)))
    category_union: np.ndarray = field(default_factory=lambda: np.zeros(len(CATEGORIES)))
    boundary_scores: list[float] = field(default_factory=list)
    garments: collections.Counter = field(default_factory=collections.Counter)  # category -> present
    found: collections.Counter = field(default_factory=collections.Counter)  # category -> found
    items_on_garments: int = 0  # items whose pixels are mostly one garment
    garments_with_items: int = 0  # garments that got at least one such item
    items_not_garment: int = 0  # items mostly background, skin or hair
    accessory_items: int = 0
    accessory_named_right: int = 0
    per_photo: list[tuple[str, float]] = field(default_factory=list)  # stem, mean category IoU

    def class_iou(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.class_intersection / self.class_union

    def category_iou(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.category_intersection / self.category_union

    def mean_iou(self) -> float:
        return float(np.nanmean(self.category_iou()))

    def found_share(self) -> float:
        return sum(self.found.values()) / max(1, sum(self.garments.values()))

    def items_per_garment(self) -> float:
        return self.items_on_garments / max(1, self.garments_with_items)

    def boundary_f(self) -> float:
        return float(np.mean(self.boundary_scores)) if self.boundary_scores else float("nan")

    def accessory_right(self) -> float:
        return self.accessory_named_right / max(1, self.accessory_items)


def worn_photo(segmenter, report: WornReport, path: Path, stem: str, lookup: np.ndarray) -> None:
    """Adds one CCP photo's figures to the report."""
    cutout = cutouts.cutout(path)
    photo, alpha = cutout.convert("RGB"), np.asarray(cutout.getchannel("A"))
    truth = data.ccp_mask(stem, lookup=lookup)
    predicted, _ = label_map(segmenter.parser.probabilities(photo), photo, alpha)
    add_label_map(report, predicted, truth, stem)
    segmentation = segmenter.segment_photo(cutout, None)
    report.decided_single += segmentation.image_type is ImageType.SINGLE_ITEM
    items = []
    for garment in segmentation.garments:
        items.append((garment, full_alpha(garment, truth.shape) >= SOLID_ALPHA))
    count_items(report, truth, items)


def add_label_map(report: WornReport, predicted: np.ndarray, truth: np.ndarray, stem: str = "") -> None:
    """Adds one photo's IoU and boundary figures: its label map (parser classes) against the truth."""
    valid = truth != data.IGNORE
    report.photos += 1
    for c in range(len(PARSER_CLASSES)):
        report.class_intersection[c] += ((predicted == c) & (truth == c) & valid).sum()
        report.class_union[c] += (((predicted == c) | (truth == c)) & valid).sum()
    truth_category = np.where(valid, CLASS_CATEGORY[np.where(valid, truth, 0)], -1)
    predicted_category = np.where(valid, CLASS_CATEGORY[predicted], -1)
    photo_iou = []
    for index in range(len(CATEGORIES)):
        p, t = predicted_category == index, truth_category == index
        report.category_intersection[index] += (p & t).sum()
        report.category_union[index] += (p | t).sum()
        if p.any() or t.any():
            photo_iou.append((p & t).sum() / (p | t).sum())
            report.boundary_scores.append(boundary_f(p, t))
    report.per_photo.append((stem, float(np.mean(photo_iou)) if photo_iou else 1.0))


def count_items(report: WornReport, truth: np.ndarray, items: list) -> None:
    """Garments present (one per kind, as a pair of shoes is one garment) against the items made."""
    kinds = {PARSER_CLASSES[c]: truth == c for c in np.unique(truth) if c != data.IGNORE and CLASS_CATEGORY[c] >= 0}
    present = {kind: mask for kind, mask in kinds.items() if mask.mean() >= MIN_GARMENT_SHARE}
    for kind, mask in present.items():
        category = category_of(kind)
        report.garments[category] += 1
        if any(g.category == category and (m & mask).sum() >= COVERED * mask.sum() for g, m in items):
            report.found[category] += 1
    owners = collections.Counter()
    for garment, mask in items:
        inside = truth[mask]
        shares = {kind: float((inside == PARSER_CLASSES.index(kind)).mean()) for kind in kinds} if inside.size else {}
        owner = max(shares, key=shares.get) if shares else None
        if owner is None or shares[owner] < 0.5:
            report.items_not_garment += 1
            continue
        owners[owner] += 1
        if owner in ACCESSORY_KINDS:
            report.accessory_items += 1
            report.accessory_named_right += garment.label == owner
    report.items_on_garments += sum(owners.values())
    report.garments_with_items += len(owners)
