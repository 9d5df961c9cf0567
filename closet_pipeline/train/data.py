"""The two datasets, preloaded once into memory at the models' input sizes (epochs then cost no I/O)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from closet_pipeline.train.splits import DATASETS, Part, part_of
from shared.categories import CLOTHING_LABELS, PARSER_CLASSES, ccp_class
from shared.providers.garments.inputs import PARSER_SIZE, classifier_pixels, parser_pixels

CLOTHING = DATASETS / "clothing"
CCP = DATASETS / "ccp"
IGNORE = 255  # mask value left out of the loss and the scores


@dataclass
class Split:
    images: np.ndarray  # N, H, W, 3 uint8
    targets: np.ndarray  # N labels (classifier) or N, H, W masks (parser)
    names: list[str]


def clothing_rows(folder: Path = CLOTHING) -> list[tuple[str, str]]:
    """(file, label) of every photo, in labels.csv's order."""
    with (folder / "labels.csv").open() as handle:
        return [(row["file"], row["label"]) for row in csv.DictReader(handle)]


def clothing(part: Part, folder: Path = CLOTHING) -> Split:
    rows = sorted((f, label) for f, label in clothing_rows(folder) if part_of(Path(f).stem) == part)
    images = []
    for file, _ in rows:
        with Image.open(folder / file) as photo:
            images.append(classifier_pixels(photo))
    targets = np.array([CLOTHING_LABELS.index(label) for _, label in rows], np.int64)
    return Split(np.stack(images), targets, [f for f, _ in rows])


def ccp_lookup(folder: Path = CCP) -> np.ndarray:
    """CCP label index -> parser class index (IGNORE for labels left out of training)."""
    names = [line.split("\t")[1] for line in (folder / "labels.txt").read_text().strip().splitlines()]
    lookup = np.full(256, IGNORE, np.uint8)
    for index, name in enumerate(names):
        cls = ccp_class(name)
        lookup[index] = IGNORE if cls is None else PARSER_CLASSES.index(cls)
    return lookup


def ccp_stems(part: Part, folder: Path = CCP) -> list[str]:
    return sorted(p.stem for p in (folder / "photos").glob("*.jpg") if part_of(p.stem) == part)


def ccp_mask(stem: str, folder: Path = CCP, lookup: np.ndarray | None = None) -> np.ndarray:
    """A photo's full-resolution mask in parser classes."""
    lookup = ccp_lookup(folder) if lookup is None else lookup
    with Image.open(folder / "masks" / f"{stem}.png") as mask:
        return lookup[np.asarray(mask)]


def ccp(part: Part, folder: Path = CCP) -> Split:
    lookup = ccp_lookup(folder)
    stems = ccp_stems(part, folder)
    images, masks = [], []
    for stem in stems:
        with Image.open(folder / "photos" / f"{stem}.jpg") as photo:
            images.append(parser_pixels(photo))
        mask = ccp_mask(stem, folder, lookup)
        masks.append(np.asarray(Image.fromarray(mask).resize(PARSER_SIZE, Image.NEAREST)))
    return Split(np.stack(images), np.stack(masks), stems)
