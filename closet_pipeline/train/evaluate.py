"""Measure the shipped garment models on the test part of both datasets and write MODELS.md.

python -m closet_pipeline.train.evaluate --out MODELS.md

Everything here runs the committed ONNX files through the runtime code (shared/providers/garments),
on photos of the test part only (closet_pipeline.train.splits); nothing was tuned on them.
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from closet_pipeline import REPO_ROOT
from closet_pipeline.train import data
from closet_pipeline.train.splits import part_of
from shared.categories import CLOTHING_CATEGORIES, CLOTHING_LABELS, PARSER_CATEGORIES, PARSER_CLASSES
from shared.media import matting
from shared.media.model_weights import sha256_of
from shared.messages import Category
from shared.providers.garments import classifier as classifier_module
from shared.providers.garments import parser as parser_module
from shared.providers.garments.inputs import classifier_pixels, parser_pixels, to_batch
from shared.providers.garments.weights import CLASSIFIER, MODELS_DIR, PARSER, session

ROOT = REPO_ROOT
DOCS = ROOT / "docs" / "models"
CATEGORIES = list(Category)
GARMENT_CLASS = {PARSER_CLASSES.index(name): category for name, category in PARSER_CATEGORIES.items()}
COVERED = 0.5  # a garment is found when an item of its category covers this share of its pixels
MIN_GARMENT_SHARE = 0.01  # the target counts garments covering 1 % or more of the photo
PALETTE = np.array([[255, 255, 255], [240, 190, 160], [90, 60, 40], [220, 40, 40], [40, 80, 220], [30, 160, 60],
                    [230, 180, 0], [128, 128, 128]], np.uint8)  # parser classes, then ignored pixels


def precision_recall(truth: np.ndarray, predicted: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    confusion = np.zeros((classes, classes), np.int64)
    np.add.at(confusion, (truth, predicted), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.diag(confusion) / confusion.sum(0)
        recall = np.diag(confusion) / confusion.sum(1)
    return confusion, precision, recall


# -- classifier ---------------------------------------------------------------------------------

@dataclass
class ClassifierReport:
    photos: int
    fine_top1: float
    top10_labels: list[str]
    top10_photos: int
    top10_top1: float  # argmax over all 18 labels, photos of the 10 most common labels
    top10_top1_within: float  # argmax over those 10 labels only (the 10-class setting of public notebooks)
    coarse_accuracy: float
    fine: tuple  # confusion, precision, recall
    coarse: tuple
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # file, truth, predicted


def evaluate_classifier() -> ClassifierReport:
    test = data.clothing("test")
    probabilities = np.concatenate([
        classifier_module.softmax(session(CLASSIFIER).run(None, {"image": to_batch(list(test.images[i:i + 128]))})[0])
        for i in range(0, len(test.images), 128)])
    fine_predicted = probabilities.argmax(1)
    decisions = [classifier_module.decide(p) for p in probabilities]
    coarse_truth = np.array([CATEGORIES.index(CLOTHING_CATEGORIES[CLOTHING_LABELS[t]]) for t in test.targets])
    coarse_predicted = np.array([CATEGORIES.index(d.category) for d in decisions])
    counts = collections.Counter(label for _, label in data.clothing_rows())
    top10 = [label for label, _ in counts.most_common(10)]
    top10_index = np.array([CLOTHING_LABELS.index(label) for label in top10])
    among = np.isin(test.targets, top10_index)
    within = top10_index[probabilities[among][:, top10_index].argmax(1)]
    failures = [(test.names[i], CLOTHING_LABELS[test.targets[i]], f"{decisions[i].label} ({decisions[i].category.value})")
                for i in np.flatnonzero(coarse_truth != coarse_predicted)]
    return ClassifierReport(
        photos=len(test.names),
        fine_top1=float((fine_predicted == test.targets).mean()),
        top10_labels=top10, top10_photos=int(among.sum()),
        top10_top1=float((fine_predicted[among] == test.targets[among]).mean()),
        top10_top1_within=float((within == test.targets[among]).mean()),
        coarse_accuracy=float((coarse_truth == coarse_predicted).mean()),
        fine=precision_recall(test.targets, fine_predicted, len(CLOTHING_LABELS)),
        coarse=precision_recall(coarse_truth, coarse_predicted, len(CATEGORIES)),
        failures=failures,
    )


# -- parser -------------------------------------------------------------------------------------

@dataclass
class ParserReport:
    photos: int
    intersection: np.ndarray
    union: np.ndarray
    garments: collections.Counter  # category -> garments covering >= 1 % of their photo
    found: collections.Counter  # category -> of those, found as an item of their category
    items: int = 0
    items_not_garment: int = 0  # mostly background, skin or hair in the truth
    items_wrong_category: int = 0
    per_photo: list[tuple[str, float]] = field(default_factory=list)  # stem, mean IoU over garment classes

    @property
    def iou(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.intersection / self.union


def full_size_labels(parse: parser_module.Parse, size: tuple[int, int]) -> np.ndarray:
    """The parse at the photo's size: each class's probability brought up bilinearly, then the likeliest."""
    planes = [np.asarray(Image.fromarray(plane.astype(np.float32), "F").resize(size, Image.BILINEAR))
              for plane in parse.probabilities]
    return np.stack(planes).argmax(0)


def evaluate_parser(segmenter, remover) -> ParserReport:
    lookup = data.ccp_lookup()
    stems = data.ccp_stems("test")
    classes = len(PARSER_CLASSES)
    report = ParserReport(len(stems), np.zeros(classes), np.zeros(classes), collections.Counter(), collections.Counter())
    for stem in stems:
        with Image.open(data.CCP / "photos" / f"{stem}.jpg") as opened:
            photo = opened.convert("RGB")
        truth = data.ccp_mask(stem, lookup=lookup)
        parse = segmenter.parser.parse(photo)
        predicted = full_size_labels(parse, photo.size)
        valid = truth != data.IGNORE
        photo_iou = []
        for c in range(classes):
            inter = int(((predicted == c) & (truth == c) & valid).sum())
            union = int((((predicted == c) | (truth == c)) & valid).sum())
            report.intersection[c] += inter
            report.union[c] += union
            if c in GARMENT_CLASS and union:
                photo_iou.append(inter / union)
        report.per_photo.append((stem, float(np.mean(photo_iou)) if photo_iou else 1.0))
        # Items through the real path: IS-Net's cut-out, then the parser's regions.
        cutout = matting.cutout(photo, remover.mask(photo))  # as remove_background makes it
        items = []
        for garment in segmenter.worn(cutout, parse):
            mask = np.zeros(truth.shape, bool)
            left, top, right, bottom = garment.bbox
            mask[top:bottom, left:right] = np.asarray(garment.crop.getchannel("A")) >= 128
            items.append((garment.category, mask))
            report.items += 1
            inside = truth[mask]
            garment_share = {cat: float(np.isin(inside, [c for c, k in GARMENT_CLASS.items() if k == cat]).mean())
                             for cat in CATEGORIES} if inside.size else {}
            if not inside.size or sum(garment_share.values()) < 0.5:
                report.items_not_garment += 1
            elif max(garment_share, key=garment_share.get) != garment.category:
                report.items_wrong_category += 1
        for category, part in truth_garments(truth):
            report.garments[category] += 1
            if any(cat == category and covers(mask, part) for cat, mask in items):
                report.found[category] += 1
    return report


def truth_garments(truth: np.ndarray):
    """(category, mask) of each garment a CCP label mask shows: a connected part of one garment
    class covering at least MIN_GARMENT_SHARE of the photo."""
    for c, category in GARMENT_CLASS.items():
        parts, count = ndimage.label(truth == c, structure=np.ones((3, 3), bool))
        for index in range(1, count + 1):
            part = parts == index
            if part.mean() >= MIN_GARMENT_SHARE:
                yield category, part


def covers(mask: np.ndarray, part: np.ndarray) -> bool:
    """Whether an item's mask finds a garment: it covers COVERED of the garment's pixels."""
    return (mask & part).sum() >= COVERED * part.sum()


def auto_image_type(segmenter) -> dict[str, tuple[int, int]]:
    """How often the auto decision says FULL_BODY: (FULL_BODY, photos) per test set."""
    single = [data.CLOTHING / f for f, _ in data.clothing_rows() if part_of(Path(f).stem) == "test"]
    worn = [data.CCP / "photos" / f"{stem}.jpg" for stem in data.ccp_stems("test")]
    answer = {}
    for name, paths in (("clothing (single items)", single), ("CCP (worn outfits)", worn)):
        full = 0
        for path in paths:
            with Image.open(path) as photo:
                full += segmenter.parser.parse(photo.convert("RGB")).shows_person()
        answer[name] = (full, len(paths))
    return answer


# -- costs --------------------------------------------------------------------------------------

def median_ms(run, repeats: int = 15) -> float:
    run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))


COST_SCRIPT = """
import resource, sys, time, json
from PIL import Image
from shared.providers.segmentation.mask_components import MaskComponentsSegmenter
from shared.providers.segmentation.local_garments import LocalGarmentSegmenter
from shared.messages import ImageType
cutout = Image.open(sys.argv[1]); cutout.load()  # the cut-out, as the segment function reads it
kind = None if sys.argv[2] == "auto" else ImageType(sys.argv[2])
if sys.argv[3] == "before":
    segmenter = MaskComponentsSegmenter(); run = lambda: segmenter.segment(cutout)
else:
    segmenter = LocalGarmentSegmenter(threads=2); segmenter.warm_up(); run = lambda: segmenter.segment_photo(cutout, kind)
run()
times = []
for _ in range(7):
    t = time.perf_counter(); run(); times.append((time.perf_counter() - t) * 1000)
times.sort()
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"ms": times[len(times) // 2], "peak_rss_mb": hwm / 1024}))
"""


def segment_costs(photo: Path, remover) -> dict[str, dict]:
    """The segment stage alone on one 1200-px working image's cut-out, in a fresh process each (peak RSS
    per path, as the segment function has it: the cut-out is made beforehand, as remove_background does)."""
    import tempfile

    with Image.open(photo) as opened:
        image = opened.convert("RGB")
    image.thumbnail((1200, 1200))  # the working image's longest side (CLOSET_WORKING_MAX_SIDE)
    cutout = matting.cutout(image, remover.mask(image))  # as remove_background makes it
    with tempfile.NamedTemporaryFile(suffix=".png", delete=False) as scratch:
        cutout.save(scratch, "PNG")
    photo = Path(scratch.name)
    out = {}
    for name, kind, when in (("mask components only (before)", "SINGLE_ITEM", "before"),
                             ("SINGLE_ITEM: components + classifier", "SINGLE_ITEM", "after"),
                             ("FULL_BODY: parser + classifier", "FULL_BODY", "after"),
                             ("auto: parser decides, then its path", "auto", "after")):
        done = subprocess.run([sys.executable, "-c", COST_SCRIPT, str(photo), kind, when], cwd=ROOT,
                              capture_output=True, text=True, check=True)
        out[name] = json.loads(done.stdout.strip().splitlines()[-1])
    photo.unlink()
    return out


def model_costs() -> dict[str, dict]:
    import onnx

    out = {}
    photo = Image.new("RGB", (800, 1200), (120, 90, 60))
    for name, pixels in ((CLASSIFIER, classifier_pixels(photo)), (PARSER, parser_pixels(photo))):
        model = onnx.load(str(MODELS_DIR / name))
        params = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
        one = session(name, threads=2)
        batch = to_batch([pixels])
        out[name] = {"mb": (MODELS_DIR / name).stat().st_size / 1e6, "params": params,
                     "ms": median_ms(lambda one=one, batch=batch: one.run(None, {"image": batch})),
                     "sha256": sha256_of(MODELS_DIR / name)}
    return out


# -- pictures -----------------------------------------------------------------------------------

def confusion_png(report: ClassifierReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(15, 6.5), gridspec_kw={"width_ratios": [3, 1.2]})
    for axis, (confusion, _, _), labels, title in (
            (axes[0], report.fine, CLOTHING_LABELS, "fine labels"), (axes[1], report.coarse, [c.value for c in CATEGORIES], "categories")):
        rows = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
        axis.imshow(rows, cmap="Blues", vmin=0, vmax=1)
        axis.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
        axis.set_yticks(range(len(labels)), labels, fontsize=8)
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        axis.set_title(f"classifier, clothing test part: {title} (counts; colour = row share)")
        for (r, c), value in np.ndenumerate(confusion):
            if value:
                axis.text(c, r, str(value), ha="center", va="center", fontsize=6,
                          color="white" if rows[r, c] > 0.5 else "black")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def captioned(image: Image.Image, caption: str, height: int) -> Image.Image:
    from PIL import ImageDraw

    image = image.convert("RGB")
    image = image.resize((max(1, round(image.width * height / image.height)), height))
    tile = Image.new("RGB", (max(image.width, 7 * len(caption)), height + 16), "white")
    tile.paste(image, (0, 0))
    ImageDraw.Draw(tile).text((2, height + 2), caption, fill=(0, 0, 0))
    return tile


def row(tiles: list[Image.Image], gap: int = 6) -> Image.Image:
    sheet = Image.new("RGB", (sum(t.width for t in tiles) + gap * (len(tiles) - 1), max(t.height for t in tiles)), "white")
    x = 0
    for tile in tiles:
        sheet.paste(tile, (x, 0))
        x += tile.width + gap
    return sheet


def classifier_failures_png(report: ClassifierReport, path: Path, count: int = 8) -> None:
    tiles = []
    for file, truth, predicted in report.failures[:count]:
        with Image.open(data.CLOTHING / file) as photo:
            tiles.append(captioned(photo, f"{truth} -> {predicted}", 150))
    if tiles:
        half = (len(tiles) + 1) // 2
        rows = [row(tiles[:half])] + ([row(tiles[half:])] if tiles[half:] else [])
        sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows) + 6), "white")
        sheet.paste(rows[0], (0, 0))
        if len(rows) > 1:
            sheet.paste(rows[1], (0, rows[0].height + 6))
        sheet.save(path, optimize=True)


def parser_failures_png(report: ParserReport, segmenter, path: Path, count: int = 3) -> list[str]:
    worst = sorted(report.per_photo, key=lambda item: item[1])[:count]
    lookup = data.ccp_lookup()
    rows = []
    for stem, score in worst:
        with Image.open(data.CCP / "photos" / f"{stem}.jpg") as opened:
            photo = opened.convert("RGB")
        truth = data.ccp_mask(stem, lookup=lookup)
        predicted = full_size_labels(segmenter.parser.parse(photo), photo.size)
        truth_colours = PALETTE[np.where(truth == data.IGNORE, len(PALETTE) - 1, truth)]
        rows.append(row([captioned(photo, f"CCP {stem}", 260), captioned(Image.fromarray(truth_colours), "truth", 260),
                         captioned(Image.fromarray(PALETTE[predicted]), f"parser (garment IoU {score:.2f})", 260)]))
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height + 8 for r in rows)), "white")
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height + 8
    sheet.save(path, optimize=True)
    return [stem for stem, _ in worst]


# -- the card -----------------------------------------------------------------------------------

def verdict(value: float, target: float) -> str:
    return "met" if value >= target else "missed"


def percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def write_card(out: Path, classifier: ClassifierReport, parser: ParserReport, auto: dict, models: dict, segment: dict,
               worst: list[str], seconds: float) -> None:
    training = {name: json.loads((DOCS / f"{name}-training.json").read_text()) for name in ("classifier", "parser")}
    garment_iou = parser.iou[list(GARMENT_CLASS)]
    mean_garment_iou = float(np.mean(garment_iou))
    found, total = sum(parser.found.values()), sum(parser.garments.values())
    recall = found / max(total, 1)
    before = segment["mask components only (before)"]["ms"]
    auto_ms = segment["auto: parser decides, then its path"]["ms"]
    whole_before = 4300.0  # ms: today's whole in-process run on a 12 MP photo (BENCHMARKS.md, issue 13)
    ratio = (whole_before + max(auto_ms, segment["FULL_BODY: parser + classifier"]["ms"]) - before) / whole_before
    peak = max(v["peak_rss_mb"] for v in segment.values())
    fine_conf, fine_p, fine_r = classifier.fine
    coarse_conf, coarse_p, coarse_r = classifier.coarse
    lines = [
        "# MODELS.md: the garment models (model card)",
        "",
        f"Generated by `python -m closet_pipeline.train.evaluate --out MODELS.md` ({seconds:.0f} s on "
        f"{platform.machine()}, 2 shared cores); every figure below is measured on the **test part** of the split rule "
        "(`closet_pipeline/train/splits.py`: sha256 of the file stem, 80/10/10), which no training or tuning step read. "
        "What it does not cover: photos unlike these two datasets (other lighting, crops, cameras), and the "
        "whole-pipeline timings, which `make bench` measures (BENCHMARKS.md).",
        "",
        "Two small networks, trained from scratch here (no pretrained weights can be had), run in-process with "
        "onnxruntime by the `local` segmenter (`shared/providers/segmentation/local_garments.py`):",
        "",
        "- **classifier** (`shared/providers/garments/classifier.py`): a garment's box of the photo, squashed to "
        "96 x 96, gives one of the clothing dataset's 18 labels; the category is the one whose labels hold the most "
        "probability, and that probability is the item's `confidence`.",
        "- **parser** (`shared/providers/garments/parser.py`): a photo squashed to 192 x 288 gives each pixel one of "
        f"{', '.join(PARSER_CLASSES)}. Items are connected regions of top, bottom, shoes or accessory; regions under "
        f"{parser_module.MIN_SHARE:.1%} of the photo or with a mean probability under {parser_module.MIN_CONFIDENCE} are "
        "dropped. Auto image type: a logistic rule on the parse's class shares, fitted on the train parts "
        "(`python -m closet_pipeline.train.thresholds`, which also shows the figures on the validation part that "
        "chose the drop rule), says whether the photo shows a person (FULL_BODY).",
        "",
        "## Targets",
        "",
        "| what | target | measured | |",
        "| --- | --- | --- | --- |",
        f"| single items: coarse category accuracy | >= 0.95 | {classifier.coarse_accuracy:.3f} ({classifier.photos} test photos) "
        f"| {verdict(classifier.coarse_accuracy, 0.95)} |",
        f"| single items: fine label top-1, 10 most common labels | >= 0.80 | {classifier.top10_top1:.3f} "
        f"(argmax over all 18 labels; {classifier.top10_top1_within:.3f} over those 10 only, the notebooks' 10-class "
        f"setting; {classifier.top10_photos} photos) | {verdict(classifier.top10_top1, 0.80)} |",
        f"| worn outfits: mean IoU over TOP, BOTTOM, SHOES, ACC | >= 0.60 | {mean_garment_iou:.3f} "
        f"({parser.photos} CCP test photos, full resolution) | {verdict(mean_garment_iou, 0.60)} |",
        f"| worn outfits: garments >= 1 % of the photo found as an item of their category | >= 90 % | {percent(recall)} "
        f"({found} of {total}) | {verdict(recall, 0.90)} |",
        f"| cost: whole in-process run on a 12 MP photo | <= 1.15 x 4.3 s | about {ratio:.2f} x (estimate: 4.3 s + the "
        f"segment stage's added {max(auto_ms, segment['FULL_BODY: parser + classifier']['ms']) - before:.0f} ms; the "
        f"stage works on the 1200-px working image whatever the upload's size) | {'met' if ratio <= 1.15 else 'missed'} |",
        f"| cost: memory | within each function's deployed memory | segment stage peak RSS {peak:.0f} MB "
        f"(one process per path, the models loaded, one 1200-px cut-out) vs 512 MiB deployed | "
        f"{'met' if peak <= 512 else 'missed'} |",
        "",
        "Public notebooks that fine-tune an ImageNet-pretrained Xception reach about 0.85 to 0.9 on the 10-class "
        "version of the clothing dataset; this classifier has no pretraining and about 1.4 M parameters.",
        "",
        "## Data and licences",
        "",
        "- Clothing dataset (`../shared/datasets/clothing`, labels.csv): 4,606 photos, CC0 (public domain). "
        "Fine labels as the dataset gives them; categories by the one mapping in `shared/categories.py` (README).",
        "- Clothing Co-Parsing, CCP (`../shared/datasets/ccp`): 904 photos with per-pixel masks of 59 labels, "
        "Apache-2.0. Mapped to the parser's classes by `shared/categories.py`: garments to top/bottom/shoes/accessory; "
        "`null` to background; `hair` to hair; skin and what is worn but no item (underwear, swimwear, socks, "
        "stockings, tights) to body; small jewellery (bracelet, earrings, necklace, ring, watch) is left out of the "
        "loss and the scores.",
        "",
        "| split | clothing photos | CCP photos |",
        "| --- | --- | --- |",
    ]
    for part in ("train", "validation", "test"):
        clothing_count = sum(part_of(Path(f).stem) == part for f, _ in data.clothing_rows())
        lines.append(f"| {part} | {clothing_count} | {len(data.ccp_stems(part))} |")
    lines += [
        "",
        "## Training",
        "",
        f"`make models` (fixed seed {training['classifier']['seed']}; augmentations: flips, zoom and stretch, colour "
        "jitter; AdamW with a one-cycle schedule; the classifier with label smoothing, the parser with class weights "
        "of inverse square-root pixel share). Times on this machine, 2 cores shared with other work:",
        "",
        "| model | epochs | threads | time |",
        "| --- | --- | --- | --- |",
        *(f"| {name} | {t['epochs']} | {t['threads']} | {t['seconds'] / 60:.0f} min |" for name, t in training.items()),
        "",
        "## Size and latency (onnxruntime, 2 threads, one photo, median of 15)",
        "",
        "| file | size | parameters | latency | sha256 (pinned in shared/garment_models.py) |",
        "| --- | --- | --- | --- | --- |",
        *(f"| shared/providers/garments/models/{name} | {m['mb']:.1f} MB | {m['params'] / 1e6:.2f} M | {m['ms']:.1f} ms "
          f"| `{m['sha256'][:16]}...` |" for name, m in models.items()),
        "",
        "The segment stage on one 1200-px working image (`examples/ccp-outfit.jpg`), each path in a fresh process:",
        "",
        "| path | median | peak RSS of the process |",
        "| --- | --- | --- |",
        *(f"| {name} | {v['ms']:.0f} ms | {v['peak_rss_mb']:.0f} MB |" for name, v in segment.items()),
        "",
        "## Classifier: per-label precision and recall (clothing test part)",
        "",
        f"Top-1 over all 18 labels: {classifier.fine_top1:.3f}. ![confusion matrices](docs/models/classifier-confusion.png)",
        "",
        "| label | category | test photos | precision | recall |",
        "| --- | --- | --- | --- | --- |",
    ]
    for i, label in enumerate(CLOTHING_LABELS):
        n = int(fine_conf[i].sum())
        lines.append(f"| {label} | {CLOTHING_CATEGORIES[label].value} | {n} | {fine_p[i]:.2f} | {fine_r[i]:.2f} |"
                     .replace("nan", "-"))
    lines += ["", "| category | test photos | precision | recall |", "| --- | --- | --- | --- |"]
    for i, category in enumerate(CATEGORIES):
        lines.append(f"| {category.value} | {int(coarse_conf[i].sum())} | {coarse_p[i]:.2f} | {coarse_r[i]:.2f} |")
    lines += [
        "",
        "## Parser: per-class IoU (CCP test part, full resolution)",
        "",
        "| class | IoU |",
        "| --- | --- |",
        *(f"| {name} | {parser.iou[c]:.3f} |" for c, name in enumerate(PARSER_CLASSES)),
        f"| **mean over top, bottom, shoes, accessory** | **{mean_garment_iou:.3f}** |",
        "",
        "Items through the real path (IS-Net cut-out, parser regions, the drop rule), garments covering 1 % or more "
        "of the photo, found when an item of their category covers half their pixels:",
        "",
        "| category | garments | found |",
        "| --- | --- | --- |",
        *(f"| {c.value} | {parser.garments[c]} | {parser.found[c]} |" for c in CATEGORIES),
        "",
        f"Of the {parser.items} items made, {parser.items_not_garment} are mostly background, skin or hair in the "
        f"truth, and {parser.items_wrong_category} mostly another category's garment.",
        "",
        "## Auto image type (a person in the photo means FULL_BODY)",
        "",
        "| test photos | decided FULL_BODY |",
        "| --- | --- |",
        *(f"| {name} | {full} of {n} ({percent(full / max(n, 1))}) |" for name, (full, n) in auto.items()),
        "",
        "## Known failure cases",
        "",
        # Read off the pictures this command draws (the test part's errors), so rewritten by hand after a retrain.
        "- Classifier, every coarse error of the test part (first 8): truth -> prediction. Skirts and dresses are "
        "confused both ways (a skirt taken for a dress or a long-sleeved top, a dress for a skirt or shorts), hats "
        "and flip-flops flat on a patterned background are taken for tops, and a kids' romper for pants; among the "
        "fine labels, Blazer, Outwear, Hoodie and Undershirt have low recall (see the table).",
        "",
        "  ![classifier failures](docs/models/classifier-failures.png)",
        "",
        f"- Parser, the three test photos with the lowest garment IoU ({', '.join(worst)}): photo, truth, parse "
        "(white background, beige body, brown hair, red top, blue bottom, green shoes, yellow accessory, grey left "
        "out). All three are long dresses or jumpsuits (TOP in the CCP mapping) that the parser splits at the "
        "waist into a top and a bottom: at 192 x 288 and without pretraining it has learned \"bottom\" as \"below "
        "the waist\". Small accessories (belts, sunglasses, bags held against clothes) are mostly missed (accessory "
        "IoU above); two shoes are two items.",
        "",
        "  ![parser failures](docs/models/parser-failures.png)",
        "",
        "- Single-item photos are classified from the garment's box in the photo: a crop with much of another "
        "garment in it (a shirt under a blazer) may take the other garment's label.",
        "",
        "## Cut-outs",
        "",
        "The cut-out the models see: `shared/media/matting.py` makes garments opaque inside their outline and "
        "estimates the foreground colour at soft edges; its before/after figures are in "
        "[docs/matting.md](docs/matting.md), from `python -m closet_pipeline.bench.matting_quality`.",
        "",
        "## Not measured here",
        "",
        "- A head on IS-Net's encoder features (the issue's idea) was not tried: the segment stage receives the "
        "cut-out, not IS-Net's activations, and the small networks above were what fitted the time.",
        "- The cost row is an estimate from the segment stage alone; BENCHMARKS.md (`make bench`) has not been "
        "rerun with these models. Latencies were measured while other work shared the 2 cores: repeated runs "
        "of the segment paths varied by up to 3 x (FULL_BODY between about 50 and 190 ms).",
        "- The training times were measured with other work sharing the 2 cores; `make models` runs the two "
        "trainings one after the other with 2 threads each (the shipped files were trained with 1 thread each, "
        "side by side), so a rerun gives close but not bit-identical weights.",
        "",
    ]
    out.write_text("\n".join(lines))


def main() -> None:
    from shared.config import Settings
    from shared.providers.background.local_isnet import LocalIsnetRemover
    from shared.providers.segmentation.local_garments import LocalGarmentSegmenter

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "MODELS.md")
    args = parser.parse_args()
    started = time.time()
    DOCS.mkdir(parents=True, exist_ok=True)
    settings = Settings()
    segmenter = LocalGarmentSegmenter(settings.min_garment_pixels)
    remover = LocalIsnetRemover.from_settings(settings)
    classifier = evaluate_classifier()
    print(f"classifier: coarse {classifier.coarse_accuracy:.3f}, top-10 {classifier.top10_top1:.3f}", flush=True)
    confusion_png(classifier, DOCS / "classifier-confusion.png")
    classifier_failures_png(classifier, DOCS / "classifier-failures.png")
    parser_report = evaluate_parser(segmenter, remover)
    print("parser IoU", dict(zip(PARSER_CLASSES, np.round(parser_report.iou, 3))), flush=True)
    worst = parser_failures_png(parser_report, segmenter, DOCS / "parser-failures.png")
    auto = auto_image_type(segmenter)
    print("auto", auto, flush=True)
    models = model_costs()
    segment = segment_costs(ROOT / "examples" / "ccp-outfit.jpg", remover)
    print("segment", segment, flush=True)
    write_card(args.out, classifier, parser_report, auto, models, segment, worst, time.time() - started)
    print(f"wrote {args.out} in {time.time() - started:.0f} s; peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
