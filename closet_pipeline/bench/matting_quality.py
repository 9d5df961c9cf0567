"""Cut-out quality before and after shared.media.matting, as a markdown table.

    python -m closet_pipeline.bench.matting_quality [--part test|validation] [--limit N] [--cache DIR]

- CCP test part (closet_pipeline.train.splits): foreground IoU at alpha 128 against CCP's masks
  (every label but 0 `null` is foreground) and the mean absolute alpha error, per photo, averaged;
- rembg's isnet-general-use reference (tests/data/rembg): IoU at alpha 128;
- examples/: the half-transparent interior of pants, hat and shoes, and the red fringe of the
  t-shirt on a red bedsheet;
- the cost of `matting.cutout` at the default working size and at 12 MP.

The raw IS-Net masks (about 3.5 s a photo on 2 cores) are cached under --cache, keyed by the
weights' sha256, so reruns only pay for the matting.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from closet_pipeline import REPO_ROOT
from closet_pipeline.train.splits import DATASETS, photos
from shared.config import Settings
from shared.media import matting, model_weights
from shared.providers.background.local_isnet import LocalIsnetRemover

EXAMPLES = REPO_ROOT / "examples"
REMBG = REPO_ROOT / "tests" / "data" / "rembg"
CCP = DATASETS / "ccp"


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def interior(alpha: np.ndarray) -> np.ndarray:
    """The garment's filled outline (alpha >= 128, holes filled), less a band of 3 % of its
    thickness scale (at least 3 px) along the outline, where a soft edge is expected."""
    filled = ndimage.binary_fill_holes(alpha >= matting.SOLID_ALPHA)
    band = max(3.0, 0.01 * max(alpha.shape))
    return ndimage.distance_transform_edt(filled) > band


def half_transparent(alpha: np.ndarray, region: np.ndarray) -> float:
    """Fraction of `region` with 20 < alpha < 235: neither background nor opaque garment."""
    values = alpha[region]
    return float(((values > 20) & (values < 235)).mean()) if values.size else 0.0


def edge_bands(alpha: np.ndarray, width: float = 2.0) -> dict[str, np.ndarray]:
    """Pixels just outside and just inside the outline (alpha 128), and the garment a little further in."""
    solid = alpha >= matting.SOLID_ALPHA
    inside, outside = ndimage.distance_transform_edt(solid), ndimage.distance_transform_edt(~solid)
    return {"outer": (outside > 0) & (outside <= width),
            "inner": (inside > 0) & (inside <= width),
            "garment": (inside > width + 1) & (inside <= 3 * width + 1)}


BAND_NAMES = {"outer": "outer edge (2 px outside the outline)", "inner": "inner edge (2 px inside the outline)",
              "garment": "garment itself (3-6 px inside)"}


def redness_on_white(rgba: np.ndarray, region: np.ndarray) -> float:
    """Mean R - (G + B) / 2 of the cut-out composited on white, over `region`."""
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    shown = rgba[..., :3].astype(np.float32) * a + 255.0 * (1.0 - a)
    red = shown[..., 0] - (shown[..., 1] + shown[..., 2]) / 2.0
    return float(red[region].mean())


def old_cutout(photo: Image.Image, mask: Image.Image) -> Image.Image:
    """What remove_background did before matting: the mask as alpha, the photo's colours kept."""
    cut = photo.convert("RGBA")
    cut.putalpha(mask)
    return cut


class MaskCache:
    """Raw IS-Net masks on disk, one PNG per photo, keyed by the weights' checksum."""

    def __init__(self, folder: Path, remover: LocalIsnetRemover | None = None, tag: str = "") -> None:
        # tag: what else than the weights changes the mask (closet_pipeline.bench.floor: resampling)
        self.remover = remover or LocalIsnetRemover.from_settings(Settings())
        self.folder = Path(folder) / (model_weights.sha256_of(self.remover.model_path)[:12] + tag)
        self.folder.mkdir(parents=True, exist_ok=True)

    def mask(self, name: str, photo: Image.Image) -> Image.Image:
        path = self.folder / f"{name}.png"
        if path.exists():
            return Image.open(path).convert("L")
        mask = self.remover.mask(photo)
        mask.save(path)
        return mask


def ccp_rows(cache: MaskCache, limit: int | None, part: str = "test") -> tuple[list[str], int]:
    chosen = photos(CCP / "photos", part)[:limit]
    before_iou, after_iou, before_mae, after_mae = [], [], [], []
    for path in chosen:
        photo = Image.open(path).convert("RGB")
        truth = np.asarray(Image.open(CCP / "masks" / f"{path.stem}.png")) != 0
        raw = np.asarray(cache.mask(f"ccp-{path.stem}", photo))
        if raw.shape != truth.shape:
            raise SystemExit(f"{path.name}: mask {raw.shape} vs CCP {truth.shape}")
        after = matting.solid_alpha(raw)
        for alpha, ious, maes in ((raw, before_iou, before_mae), (after, after_iou, after_mae)):
            ious.append(iou(alpha >= 128, truth))
            maes.append(float(np.abs(alpha / 255.0 - truth).mean()))
    n = len(chosen)
    deltas = [a - b for a, b in zip(after_iou, before_iou)]
    fell, rose = sum(d < -1e-9 for d in deltas), sum(d > 1e-9 for d in deltas)
    rows = [
        f"| CCP {part} part ({n} photos): mean foreground IoU at alpha 128 | {np.mean(before_iou):.4f} | {np.mean(after_iou):.4f} |",
        f"| CCP {part} part: worst photo's IoU | {min(before_iou):.4f} | {min(after_iou):.4f} |",
        f"| CCP {part} part: photos whose IoU fell / rose (largest fall, rise) | | {fell} / {rose} ({min(deltas):+.4f}, {max(deltas):+.4f}) |",
        f"| CCP {part} part: mean absolute alpha error | {np.mean(before_mae):.4f} | {np.mean(after_mae):.4f} |",
    ]
    return rows, n


def rembg_row(cache: MaskCache) -> str:
    photo = Image.open(REMBG / "anime-girl-1.jpg").convert("RGB")
    reference = np.asarray(Image.open(REMBG / "anime-girl-1.isnet-general-use.png").getchannel("A")) >= 128
    raw = np.asarray(cache.mask("rembg-anime-girl-1", photo))
    return (f"| rembg reference (anime-girl-1, isnet-general-use): IoU at alpha 128 | {iou(raw >= 128, reference):.4f} | "
            f"{iou(matting.solid_alpha(raw) >= 128, reference):.4f} |")


def example_rows(cache: MaskCache) -> list[str]:
    rows = []
    for name in ("pants", "hat", "shoes"):
        photo = Image.open(EXAMPLES / f"{name}.jpg").convert("RGB")
        raw = np.asarray(cache.mask(f"example-{name}", photo))
        region = interior(raw)
        rows.append(f"| examples/{name}.jpg: interior with 20 < alpha < 235 | {half_transparent(raw, region):.2%} | "
                    f"{half_transparent(matting.solid_alpha(raw), region):.2%} |")
    photo = Image.open(EXAMPLES / "t-shirt.jpg").convert("RGB")
    mask = cache.mask("example-t-shirt", photo)
    before, after = np.asarray(old_cutout(photo, mask)), np.asarray(matting.cutout(photo, mask))
    for band, region in edge_bands(np.asarray(mask)).items():
        rows.append(f"| examples/t-shirt.jpg (red bedsheet), {BAND_NAMES[band]}: redness R-(G+B)/2 on white | "
                    f"{redness_on_white(before, region):.1f} | {redness_on_white(after, region):.1f} |")
    return rows


def cost_rows(cache: MaskCache, repeats: int = 5) -> list[str]:
    photo = Image.open(EXAMPLES / "pants.jpg").convert("RGB")
    mask = cache.mask("example-pants", photo)
    rows = []
    for label, size in (("1200x900 (default working size of a 12 MP upload)", (1200, 900)),
                        ("4000x3000 (12 MP, working_max_side 4096)", (4000, 3000))):
        big, big_mask = photo.resize(size, Image.Resampling.BICUBIC), mask.resize(size, Image.Resampling.LANCZOS)
        timings = {}
        for name, make in (("before", old_cutout), ("after", matting.cutout)):
            wall, cpu = [], []
            for _ in range(repeats):
                started, started_cpu = time.perf_counter(), time.process_time()
                make(big, big_mask)
                wall.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - started_cpu) * 1000)
            timings[name] = f"{statistics.median(wall):.0f} ({statistics.median(cpu):.0f} CPU)"
        rows.append(f"| cut-out cost at {label}, ms wall (CPU), median of {repeats} | {timings['before']} | {timings['after']} |")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos of the CCP part")
    parser.add_argument("--part", choices=("test", "validation"), default="test",
                        help="CCP part: parameters are chosen on validation, reported on test")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/closet-matting-cache"))
    args = parser.parse_args(argv)
    cache = MaskCache(args.cache)
    rows, _ = ccp_rows(cache, args.limit, args.part)
    rows += [rembg_row(cache), *example_rows(cache), *cost_rows(cache)]
    print("| measure | before (mask as alpha) | after (matting) |")
    print("| --- | --- | --- |")
    print("\n".join(rows))
    print(f"\nLoad average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.")


if __name__ == "__main__":
    main()
