"""How the parser's rules were chosen: their figures on the VALIDATION part (never the test part).

python -m closet_pipeline.train.thresholds

- PERSON_WEIGHTS, PERSON_BIAS (auto image type): fitted on the TRAIN parts (clothing photos are single
  items, CCP photos worn outfits), then checked on the validation part; the wearer share alone is shown
  for comparison.
- MIN_SHARE and MIN_CONFIDENCE (items kept): for each candidate, how many garments covering 1 % or
  more of the photo are found as an item of their category, and how many items are not garments.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from closet_pipeline.train import data
from closet_pipeline.train.evaluate import GARMENT_CLASS, covers, truth_garments
from closet_pipeline.train.splits import part_of
from shared.providers.garments.parser import GarmentParser


def person_features(parser: GarmentParser, paths: list[Path]) -> np.ndarray:
    rows = []
    for path in paths:
        with Image.open(path) as photo:
            rows.append(np.sqrt(parser.parse(photo.convert("RGB")).shares()))
    return np.array(rows)


def fit_logistic(x: np.ndarray, y: np.ndarray, steps: int = 3000, rate: float = 0.5, l2: float = 1e-3):
    """Weights and bias of a class-balanced logistic regression (plain gradient descent: 8 numbers)."""
    weight = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        g = weight * (p - y)
        w -= rate * (x.T @ g / len(y) + l2 * w)
        b -= rate * g.mean()
    return w, b


def person_rule(parser: GarmentParser) -> None:
    def paths(part):
        single = [data.CLOTHING / f for f, _ in data.clothing_rows() if part_of(Path(f).stem) == part]
        worn = [data.CCP / "photos" / f"{stem}.jpg" for stem in data.ccp_stems(part)]
        return person_features(parser, single), person_features(parser, worn)

    single, worn = paths("train")
    w, b = fit_logistic(np.vstack([single, worn]), np.r_[np.zeros(len(single)), np.ones(len(worn))])
    print("PERSON_WEIGHTS = (" + ", ".join(f"{v:.3f}" for v in w) + f")\nPERSON_BIAS = {b:.3f}")
    for part in ("train", "validation"):
        single, worn = paths(part) if part == "validation" else (single, worn)
        print(f"{part}: single items called FULL_BODY {np.mean(single @ w + b >= 0):.3f} of {len(single)}, "
              f"worn outfits called FULL_BODY {np.mean(worn @ w + b >= 0):.3f} of {len(worn)}")


def main() -> None:
    parser = GarmentParser()
    person_rule(parser)
    single = [data.CLOTHING / f for f, _ in data.clothing_rows() if part_of(Path(f).stem) == "validation"]
    shares = []
    for path in single:
        with Image.open(path) as photo:
            shares.append(parser.parse(photo.convert("RGB")).person_share())
    worn_shares, parses, truths = [], [], []
    lookup = data.ccp_lookup()
    for stem in data.ccp_stems("validation"):
        with Image.open(data.CCP / "photos" / f"{stem}.jpg") as photo:
            parse = parser.parse(photo.convert("RGB"))
        worn_shares.append(parse.person_share())
        parses.append(parse)
        truths.append(np.asarray(Image.fromarray(data.ccp_mask(stem, lookup=lookup)).resize(
            parse.probabilities.shape[:0:-1], Image.NEAREST)))
    quantiles = [0.5, 0.9, 0.95, 0.99, 1.0]
    print("wearer share, single items (clothing validation) quantiles", quantiles, np.round(np.quantile(shares, quantiles), 4))
    print("wearer share, worn outfits (CCP validation) quantiles", [0.0, 0.01, 0.05, 0.1, 0.5],
          np.round(np.quantile(worn_shares, [0.0, 0.01, 0.05, 0.1, 0.5]), 4))
    for threshold in (0.01, 0.02, 0.03, 0.05):
        print(f"  person at {threshold}: single items called FULL_BODY {np.mean(np.array(shares) >= threshold):.3f}, "
              f"worn outfits called FULL_BODY {np.mean(np.array(worn_shares) >= threshold):.3f}")
    # Items at the parser's resolution (the cut-out's alpha left aside here).
    for min_share in (0.001, 0.002, 0.005):
        for min_confidence in (0.4, 0.5, 0.6):
            garments = found = items = not_garment = 0
            for parse, truth in zip(parses, truths):
                regions = parse.regions(min_share, min_confidence)
                items += len(regions)
                garment_pixels = np.isin(truth, list(GARMENT_CLASS))
                not_garment += sum(garment_pixels[r.mask].mean() < 0.5 for r in regions)
                for category, part in truth_garments(truth):
                    garments += 1
                    found += any(r.category == category and covers(r.mask, part) for r in regions)
            print(f"min share {min_share}, min confidence {min_confidence}: found {found}/{garments} "
                  f"({found / garments:.3f}); {items} items, {not_garment} not garments")


if __name__ == "__main__":
    main()
