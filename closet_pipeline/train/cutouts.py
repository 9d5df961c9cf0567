"""Cut-outs of the evaluation photos, made as remove_background makes them, cached on disk.

IS-Net costs about two seconds a photo on 2 cores; the evaluation and the threshold sweep read the
same photos many times, so each photo's cut-out is kept in `$CLOSET_TRAINING_DIR/cutouts`, named by
the sha256 of the photo's bytes and of the IS-Net graph.

python -m closet_pipeline.train.cutouts [--part validation|test]   (fills the cache ahead)
"""

from __future__ import annotations

import argparse
import collections
import hashlib
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from closet_pipeline.train import data
from closet_pipeline.train.fit import TRAINING_DIR
from closet_pipeline.train.splits import Part, part_of
from shared.media import matting
from shared.media.model_weights import sha256_of

FOLDER = TRAINING_DIR / "cutouts"


@cache
def settings():
    from shared.config import Settings

    return Settings()


@cache
def remover():
    from shared.providers.background.local_isnet import LocalIsnetRemover

    return LocalIsnetRemover.from_settings(settings())


def working_image(path: Path) -> Image.Image:
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    image.thumbnail((settings().working_max_side, settings().working_max_side))
    return image


# IS-Net's decoder feature maps (channels @ side) a parser head can be trained on (isnet_head.py).
FEATURES = {"input.948": 128, "input.832": 64, "input.740": 32}
FEATURE_SIDE = 64  # every map is brought to this side and stacked


def cached_path(path: Path, suffix: str) -> Path:
    graph = sha256_of(remover().model_path)[:16]
    return FOLDER / f"{hashlib.sha256(Path(path).read_bytes()).hexdigest()[:32]}-{graph}{suffix}"


def cutout(path: Path, features: bool = False) -> Image.Image:
    """The RGBA cut-out of a photo at its working size (and, with `features`, IS-Net's decoder
    features cached beside it, from the same pass)."""
    cached, stacked = cached_path(path, ".png"), cached_path(path, ".features.npy")
    if cached.exists() and (stacked.exists() or not features):
        with Image.open(cached) as image:
            return image.convert("RGBA")
    image = working_image(path)
    session = remover()._get_session()
    names = ["output", *FEATURES] if features else ["output"]
    outputs = session.run(names, {session.get_inputs()[0].name: remover().prepare(image)})
    made = matting.cutout(image, remover().to_mask(outputs[0], image.size))
    FOLDER.mkdir(parents=True, exist_ok=True)
    if features:
        maps = [resize_maps(m[0], FEATURE_SIDE) for m in outputs[1:]]
        np.save(stacked, np.concatenate(maps).astype(np.float16))
    made.save(cached.with_suffix(".tmp.png"))
    cached.with_suffix(".tmp.png").replace(cached)
    return made


def resize_maps(maps: np.ndarray, side: int) -> np.ndarray:
    """C x S x S -> C x side x side: mean over blocks when shrinking, repetition when growing."""
    size = maps.shape[-1]
    if size > side:
        factor = size // side
        return maps.reshape(maps.shape[0], side, factor, side, factor).mean(axis=(2, 4))
    return maps.repeat(side // size, axis=1).repeat(side // size, axis=2)


def features(path: Path) -> np.ndarray:
    """IS-Net's decoder features of a photo, C x 64 x 64 float16 (computed with its cut-out)."""
    cutout(path, features=True)
    return np.load(cached_path(path, ".features.npy"))


# What IS-Net's two seconds a photo allow on 2 cores. The single-garment figures are label-balanced,
# so capping the common labels (T-Shirt, Pants: 70-90 photos a part) costs precision there and no
# bias; the IS-Net head (option 2) trains on every third CCP train photo, which MODELS.md says.
PER_LABEL = 12
HEAD_TRAIN_EVERY = 3


def clothing_photos(part: Part) -> list[tuple[Path, str]]:
    """(path, dataset label) of a part's clothing photos: at most PER_LABEL a label, by name."""
    photos = sorted((data.CLOTHING / f, label) for f, label in data.clothing_rows() if part_of(Path(f).stem) == part)
    taken, kept = collections.Counter(), []
    for path, label in photos:
        taken[label] += 1
        if taken[label] <= PER_LABEL:
            kept.append((path, label))
    return kept


def ccp_photos(part: Part) -> list[tuple[Path, str]]:
    """(path, stem) of a part's CCP photos; of the train part, those the IS-Net head trains on."""
    stems = data.ccp_stems(part)
    return [(data.CCP / "photos" / f"{stem}.jpg", stem) for stem in (stems[::HEAD_TRAIN_EVERY] if part == "train" else stems)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--part", choices=["train", "validation", "test"], action="append")
    args = parser.parse_args()
    for part in args.part or ["validation", "test"]:
        # Clothing photos are evaluated, never trained on here: their cut-outs are needed for the
        # validation and test parts only.
        photos = [(p, True) for p, _ in ccp_photos(part)]
        photos += [(p, False) for p, _ in clothing_photos(part)] if part != "train" else []
        for index, (path, with_features) in enumerate(photos):
            cutout(path, with_features)
            if index % 100 == 0:
                print(f"{part}: {index}/{len(photos)}", flush=True)


if __name__ == "__main__":
    main()
