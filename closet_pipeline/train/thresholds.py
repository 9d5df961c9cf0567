"""How the segmenter's rules were chosen: their figures on the VALIDATION parts (never the test part).

python -m closet_pipeline.train.thresholds   (writes docs/models/thresholds.md)

- WORN_THRESHOLD (the image kind): single garments taken for outfits, and outfits for single garments.
- The guided filter's RADIUS and EPSILON: boundary F-score and mIoU of the label map.
- The parser's item rule (MIN_SHARE, MIN_CONFIDENCE, SLIVER_SHARE, SLIVER_RATIO): garments found,
  items per garment and items that are no garment, on CCP's validation photos.
- SINGLE_SLIVER_RATIO: items per single-garment photo and the largest item's category.
Each photo's cut-out, parse and classifier output is computed once; only the rules are swept.
"""

from __future__ import annotations

import itertools

import numpy as np

from closet_pipeline import REPO_ROOT
from closet_pipeline.train import cutouts, data
from closet_pipeline.train.label_maps import CLOTHING_TO_LABEL
from closet_pipeline.train.measure import SingleReport, WornReport, add_label_map, count_items, single_photo
from shared.categories import category_of
from shared.media import guided_filter
from shared.media.matting import SOLID_ALPHA
from shared.providers.garments import parser as parser_module
from shared.providers.garments.classifier import decide
from shared.providers.segmentation import local_garments
from shared.providers.segmentation.local_garments import LocalGarmentSegmenter

OUT = REPO_ROOT / "docs" / "models" / "thresholds.md"


def kind_rows(segmenter: LocalGarmentSegmenter) -> list[str]:
    single = [segmenter.classifier.run([cutouts.working_image(p)])[1][0] for p, _ in cutouts.clothing_photos("validation")]
    worn = [segmenter.classifier.run([cutouts.working_image(p)])[1][0] for p, _ in cutouts.ccp_photos("validation")]
    rows = ["| WORN_THRESHOLD | single garments decided FULL_BODY | outfits decided SINGLE_ITEM |", "| --- | --- | --- |"]
    for threshold in (0.2, 0.3, 0.5, 0.7, 0.8, 0.9):
        rows.append(f"| {threshold} | {np.mean(np.array(single) >= threshold):.3f} ({len(single)}) | "
                    f"{np.mean(np.array(worn) < threshold):.3f} ({len(worn)}) |")
    return rows


def ccp_validation(segmenter: LocalGarmentSegmenter) -> list[tuple]:
    """(photo, alpha, parser probabilities, truth) of each CCP validation photo."""
    photos, lookup = [], data.ccp_lookup()
    for path, stem in cutouts.ccp_photos("validation"):
        cutout = cutouts.cutout(path)
        photo, alpha = cutout.convert("RGB"), np.asarray(cutout.getchannel("A"))
        photos.append((photo, alpha, segmenter.parser.probabilities(photo), data.ccp_mask(stem, lookup=lookup)))
    return photos


def edge_rows(validation: list[tuple]) -> list[str]:
    """The guided filter's reach and edge strength: boundary F-score and mIoU of the label map."""
    rows = ["| RADIUS (px at WORK_SIDE) | EPSILON | boundary F at 2 px | mIoU TOP/BOTTOM/SHOES/ACC |",
            "| --- | --- | --- | --- |"]
    chosen = (guided_filter.RADIUS, guided_filter.EPSILON)
    for radius, epsilon in [(0, 0.0)] + list(itertools.product((2, 4, 6, 8), (1e-3, 1e-2))):
        guided_filter.RADIUS, guided_filter.EPSILON = radius, epsilon
        report = WornReport()
        for photo, alpha, probabilities, truth in validation:
            if radius == 0:  # plain bilinear, for comparison
                labels = plain_labels(probabilities, photo, alpha)
            else:
                labels, _ = parser_module.label_map(probabilities, photo, alpha)
            add_label_map(report, labels, truth)
        name = "bilinear, no filter" if radius == 0 else str(radius)
        rows.append(f"| {name} | {epsilon if radius else '-'} | {report.boundary_f():.3f} | {report.mean_iou():.3f} |")
    guided_filter.RADIUS, guided_filter.EPSILON = chosen
    return rows


def plain_labels(probabilities: np.ndarray, photo, alpha: np.ndarray) -> np.ndarray:
    from PIL import Image

    planes = [np.asarray(Image.fromarray(p.astype(np.float32), "F").resize(photo.size, Image.BILINEAR))
              for p in probabilities]
    return np.where(alpha >= SOLID_ALPHA, np.stack(planes).argmax(0), 0)


def worn_rows(segmenter: LocalGarmentSegmenter, validation: list[tuple]) -> list[str]:
    photos = []
    for photo, alpha, probabilities, truth in validation:
        labels, refined = parser_module.label_map(probabilities, photo, alpha)
        photos.append((alpha, labels, refined, truth))
    rows = ["| MIN_SHARE | MIN_CONFIDENCE | SLIVER_SHARE | SLIVER_RATIO | garments found | items per garment | "
            "items no garment |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for min_share, min_confidence, sliver_share, sliver_ratio in itertools.product(
            (0.0002, 0.0005, 0.001, 0.002), (0.3, 0.4, 0.5, 0.6), (0.0, 0.002, 0.005), (4.0, 8.0)):
        if sliver_share == 0.0 and sliver_ratio != 8.0:
            continue
        report = WornReport()
        for alpha, labels, refined, truth in photos:
            items = []
            for region in parser_module.regions(labels, refined, min_share, min_confidence, sliver_share, sliver_ratio):
                mask = region.mask & (alpha >= SOLID_ALPHA)
                if mask.sum() >= segmenter.min_pixels:
                    items.append((_Named(region.kind), mask))
            count_items(report, truth, items)
        rows.append(f"| {min_share} | {min_confidence} | {sliver_share} | {sliver_ratio} | {report.found_share():.3f} | "
                    f"{report.items_per_garment():.3f} | {report.items_not_garment} |")
    return rows


class _Named:
    """What count_items reads of an item: its label and category."""

    def __init__(self, kind: str) -> None:
        self.label, self.category = kind, category_of(kind)


def single_rows(segmenter: LocalGarmentSegmenter) -> list[str]:
    photos = []
    for path, label in cutouts.clothing_photos("validation"):
        cutout = cutouts.cutout(path)
        parts = segmenter.components.segment(cutout)
        probabilities = segmenter.classifier.run([cutout.convert("RGB").crop(p.bbox) for p in parts])[0]
        photos.append((CLOTHING_TO_LABEL[label], parts, [decide(p) for p in probabilities]))
    rows = ["| SINGLE_SLIVER_RATIO | photos with one item | mean items | largest item's category right |",
            "| --- | --- | --- | --- |"]
    for ratio in (0.0, 0.02, 0.05, 0.1, 0.2, 0.3):
        counts, right = [], []
        for truth, parts, predictions in photos:
            kept = [(p, d) for p, d in zip(parts, predictions) if parts and p.area_pixels >= ratio * parts[0].area_pixels]
            counts.append(len({d.label for _, d in kept}))
            right.append(bool(kept) and kept[0][1].category == category_of(truth))
        rows.append(f"| {ratio} | {np.mean(np.array(counts) == 1):.3f} | {np.mean(counts):.2f} | {np.mean(right):.3f} |")
    return rows


def grouping_rows(segmenter: LocalGarmentSegmenter) -> list[str]:
    """The single path as it runs, for NEAR_SHARE (which parts are one item) and CLASSIFY_MARGIN (the box's frame)."""
    photos, chosen = cutouts.clothing_photos("validation"), (local_garments.NEAR_SHARE, local_garments.CLASSIFY_MARGIN)
    rows = ["| NEAR_SHARE | CLASSIFY_MARGIN | coarse | mean per-category recall | common label top-1 | photos with one item |",
            "| --- | --- | --- | --- | --- | --- |"]
    try:
        for near, margin in ((0.05, 0.0), (0.15, 0.0), (0.15, 0.1), (0.15, 0.2)):
            local_garments.NEAR_SHARE, local_garments.CLASSIFY_MARGIN = near, margin
            report = SingleReport([single_photo(segmenter, path, label) for path, label in photos])
            rows.append(f"| {near} | {margin} | {report.coarse_accuracy():.3f} | {report.mean_category_recall():.3f} | "
                        f"{report.common_label_top1():.3f} | {report.item_counts()[1] / len(photos):.3f} |")
    finally:
        local_garments.NEAR_SHARE, local_garments.CLASSIFY_MARGIN = chosen
    return rows


def main() -> None:
    segmenter = LocalGarmentSegmenter(threads=2)
    validation = ccp_validation(segmenter)
    lines = ["# The segmenter's rules on the validation parts", "",
             "Written by `python -m closet_pipeline.train.thresholds`; the test part is not read. MODELS.md names the "
             "values chosen.", "", "## Image kind", "", *kind_rows(segmenter), "",
             "## Single garments: scraps", "", *single_rows(segmenter), "",
             "## Single garments: which parts are one item, and the classifier's frame", "",
             *grouping_rows(segmenter), "",
             "## Worn outfits: edges", "", *edge_rows(validation), "",
             "## Worn outfits: the item rule", "", *worn_rows(segmenter, validation), ""]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
