"""The two datasets, preloaded once into memory at the models' input sizes (epochs then cost no I/O).

The classifier learns from three sources, each example with a label, an image kind, or both:
- the clothing dataset's photos: a garment label, and the kind "single item";
- CCP's photos whole: the kind "worn outfit" (no label);
- CCP's garments, one crop per vocabulary label in a photo (a pair of shoes is one crop), boxed as
  the segmenter boxes an item: a label (no kind), so bags, belts, scarves and glasses are learnt too.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from closet_pipeline.train.label_maps import CCP_TO_LABEL, CLOTHING_TO_LABEL, ccp_class
from closet_pipeline.train.splits import DATASETS, Part, part_of
from shared.categories import LABELS, PARSER_CLASSES
from shared.providers.garments.inputs import classifier_pixels, parser_size
from shared.providers.segmentation.items import crop_padding

CLOTHING = DATASETS / "clothing"
CCP = DATASETS / "ccp"
IGNORE = 255  # mask value left out of the loss and the scores
NO_TARGET = -100  # a classifier example without a label or without a kind
SINGLE_ITEM, WORN = 0, 1  # the kind head's classes
MIN_CROP_PIXELS = 200  # CCP garments smaller than this are not cropped for the classifier
PARSER_TRAINING_SIZE = parser_size(550, 827)


@dataclass
class Split:
    images: np.ndarray  # N, H, W, 3 uint8
    targets: np.ndarray  # N labels (classifier) or N, H, W masks (parser)
    names: list[str]
    kinds: np.ndarray | None = None  # N image kinds (classifier)


def clothing_rows(folder: Path = CLOTHING) -> list[tuple[str, str]]:
    """(file, dataset label) of every photo, in labels.csv's order."""
    with (folder / "labels.csv").open() as handle:
        return [(row["file"], row["label"]) for row in csv.DictReader(handle)]


def clothing(part: Part, folder: Path = CLOTHING) -> Split:
    rows = sorted((f, label) for f, label in clothing_rows(folder) if part_of(Path(f).stem) == part)
    images = []
    for file, _ in rows:
        with Image.open(folder / file) as photo:
            images.append(classifier_pixels(photo))
    targets = np.array([LABELS.index(CLOTHING_TO_LABEL[label]) for _, label in rows], np.int64)
    return Split(np.stack(images), targets, [f for f, _ in rows], np.full(len(rows), SINGLE_ITEM, np.int64))


def ccp_names(folder: Path = CCP) -> list[str]:
    return [line.split("\t")[1] for line in (folder / "labels.txt").read_text().strip().splitlines()]


def ccp_lookup(folder: Path = CCP) -> np.ndarray:
    """CCP label index -> parser class index (IGNORE for labels left out of training)."""
    lookup = np.full(256, IGNORE, np.uint8)
    for index, name in enumerate(ccp_names(folder)):
        cls = ccp_class(name)
        lookup[index] = IGNORE if cls is None else PARSER_CLASSES.index(cls)
    return lookup


def ccp_stems(part: Part, folder: Path = CCP) -> list[str]:
    return sorted(p.stem for p in (folder / "photos").glob("*.jpg") if part_of(p.stem) == part)


def ccp_raw_mask(stem: str, folder: Path = CCP) -> np.ndarray:
    with Image.open(folder / "masks" / f"{stem}.png") as mask:
        return np.asarray(mask)


def ccp_mask(stem: str, folder: Path = CCP, lookup: np.ndarray | None = None) -> np.ndarray:
    """A photo's full-resolution mask in parser classes."""
    lookup = ccp_lookup(folder) if lookup is None else lookup
    return lookup[ccp_raw_mask(stem, folder)]


def ccp_label_masks(stem: str, folder: Path = CCP) -> dict[str, np.ndarray]:
    """Vocabulary label -> its pixels in a photo (bool, full resolution), for the labels it shows."""
    raw, names = ccp_raw_mask(stem, folder), ccp_names(folder)
    found: dict[str, np.ndarray] = {}
    for index in np.unique(raw):
        label = CCP_TO_LABEL.get(names[index])
        if label is not None:
            found[label] = found.get(label, False) | (raw == index)
    return found


def ccp(part: Part, folder: Path = CCP) -> Split:
    """Photos and masks at the parser's input size for CCP's usual 550 x 827 (their heights vary a
    little, and a batch needs one size)."""
    lookup = ccp_lookup(folder)
    stems = ccp_stems(part, folder)
    images, masks = [], []
    for stem in stems:
        with Image.open(folder / "photos" / f"{stem}.jpg") as photo:
            images.append(np.asarray(photo.convert("RGB").resize(PARSER_TRAINING_SIZE, Image.BILINEAR)))
        mask = Image.fromarray(ccp_mask(stem, folder, lookup))
        masks.append(np.asarray(mask.resize(PARSER_TRAINING_SIZE, Image.NEAREST)))
    return Split(np.stack(images), np.stack(masks), stems)


def ccp_for_classifier(part: Part, folder: Path = CCP) -> tuple[Split, Split]:
    """(whole photos with the kind 'worn', garment crops with their labels)."""
    stems = ccp_stems(part, folder)
    wholes, crops, crop_labels, crop_names = [], [], [], []
    for stem in stems:
        with Image.open(folder / "photos" / f"{stem}.jpg") as opened:
            photo = opened.convert("RGB")
        wholes.append(classifier_pixels(photo))
        for label, mask in sorted(ccp_label_masks(stem, folder).items()):
            if mask.sum() < MIN_CROP_PIXELS:
                continue
            rows, cols = np.nonzero(mask)
            top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
            pad = crop_padding(max(bottom - top, right - left))
            box = (max(0, left - pad), max(0, top - pad), min(photo.width, right + pad), min(photo.height, bottom + pad))
            crops.append(classifier_pixels(photo.crop(box)))
            crop_labels.append(LABELS.index(label))
            crop_names.append(f"{stem}:{label}")
    whole = Split(np.stack(wholes), np.full(len(stems), NO_TARGET, np.int64), stems, np.full(len(stems), WORN, np.int64))
    garments = Split(np.stack(crops), np.array(crop_labels, np.int64), crop_names,
                     np.full(len(crops), NO_TARGET, np.int64))
    return whole, garments


def concatenate(*splits: Split) -> Split:
    return Split(np.concatenate([s.images for s in splits]), np.concatenate([s.targets for s in splits]),
                 [n for s in splits for n in s.names], np.concatenate([s.kinds for s in splits]))
