"""The parser options of issue 18, item 2, measured against each other on CCP's test part:

1. DeepLabv3-MobileNetV2 fine-tuned (the shipped parser);
2. a head on IS-Net's decoder features, which remove_background computes for every photo anyway;
3. both: the two probability maps averaged.

python -m closet_pipeline.train.isnet_head   (writes docs/models/parser-options.json)

The head is two convolutions on three of IS-Net's decoder maps (896 channels brought to 64 x 64,
cached by `cutouts.py` with each photo's cut-out), trained on every third photo of the train part. Every option is
scored the same way: probabilities brought up bilinearly to the photo's size, inside the cut-out,
category IoU over the test part (no guided filter, so the networks are compared, not the refinement).
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from closet_pipeline import REPO_ROOT
from closet_pipeline.train import cutouts, data
from closet_pipeline.train.fit import DEVICE, fit
from closet_pipeline.train.measure import CATEGORIES, CLASS_CATEGORY
from shared.categories import PARSER_CLASSES
from shared.media.matting import SOLID_ALPHA
from shared.messages import Category
from shared.providers.garments.parser import GarmentParser

SEED = 13
OUT = REPO_ROOT / "docs" / "models" / "parser-options.json"
TARGET_SIDE = 128  # the head's logits are brought up to this side for the loss


class FeatureHead(nn.Module):
    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(channels, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
                                    nn.Conv2d(128, 128, 3, padding=1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
                                    nn.Conv2d(128, classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def part(name: str) -> tuple[np.ndarray, np.ndarray, list]:
    """(features N x C x 64 x 64 float16, masks N x 128 x 128 of the squashed photo, photos)."""
    lookup, features, masks, photos = data.ccp_lookup(), [], [], cutouts.ccp_photos(name)
    for path, stem in photos:
        features.append(cutouts.features(path))
        mask = Image.fromarray(data.ccp_mask(stem, lookup=lookup)).resize((TARGET_SIDE, TARGET_SIDE), Image.NEAREST)
        masks.append(np.asarray(mask))
    return np.stack(features), np.stack(masks), photos


def train_head(epochs: int = 30, batch: int = 16) -> nn.Module:
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    features, masks, _ = part("train")
    x, y = torch.from_numpy(features), torch.from_numpy(masks).long()
    model = FeatureHead(x.shape[1], len(PARSER_CLASSES)).to(DEVICE)

    def batch_loss(index: torch.Tensor) -> torch.Tensor:
        inputs, targets = x[index].to(DEVICE).float(), y[index].to(DEVICE)
        if torch.rand(1, generator=generator).item() < 0.5:  # the one augmentation cached features allow
            inputs, targets = inputs.flip(3), targets.flip(2)
        logits = F.interpolate(model(inputs), size=(TARGET_SIDE, TARGET_SIDE), mode="bilinear", align_corners=False)
        return F.cross_entropy(logits, targets, ignore_index=data.IGNORE)

    fit(model, "isnet-head", {"seed": SEED, "batch": batch, "epochs": epochs}, epochs=epochs, steps=len(x) // batch,
        batch=batch, groups=[{"params": list(model.parameters()), "lr": 3e-3}], weight_decay=1e-4, pct_start=0.1,
        generator=generator, draw=lambda n: torch.randperm(len(x), generator=generator)[:n],
        batch_loss=batch_loss, validation=lambda: "", validate_every=epochs)
    return model.eval()


def upsampled(probabilities: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(p.astype(np.float32), "F").resize(size, Image.BILINEAR))
                     for p in probabilities])


def main() -> None:
    started = time.time()
    head = train_head()
    parser = GarmentParser(threads=2)
    features, _, photos = part("test")
    lookup = data.ccp_lookup()
    names = ("DeepLabv3-MobileNetV2 (shipped)", "head on IS-Net's decoder features", "both (probabilities averaged)")
    inter, union = np.zeros((3, len(CATEGORIES))), np.zeros((3, len(CATEGORIES)))
    for (path, stem), feature in zip(photos, features):
        cutout = cutouts.cutout(path)
        photo, alpha = cutout.convert("RGB"), np.asarray(cutout.getchannel("A"))
        deeplab = upsampled(parser.probabilities(photo), photo.size)
        with torch.no_grad():
            logits = head(torch.from_numpy(feature[None]).to(DEVICE).float())
        isnet = upsampled(torch.softmax(logits, 1)[0].cpu().numpy(), photo.size)
        truth = data.ccp_mask(stem, lookup=lookup)
        valid = truth != data.IGNORE
        truth_category = np.where(valid, CLASS_CATEGORY[np.where(valid, truth, 0)], -1)
        for option, probabilities in enumerate((deeplab, isnet, (deeplab + isnet) / 2)):
            labels = np.where(alpha >= SOLID_ALPHA, probabilities.argmax(0), 0)
            predicted = np.where(valid, CLASS_CATEGORY[labels], -1)
            for c in range(len(CATEGORIES)):
                inter[option, c] += ((predicted == c) & (truth_category == c)).sum()
                union[option, c] += ((predicted == c) | (truth_category == c)).sum()
    iou = inter / np.maximum(union, 1)
    acc = CATEGORIES.index(Category.ACC)
    costs = ("one network in the segment stage (its latency in the table below)",
             "no second backbone, but remove_background must hand 7 MB of features a photo to the segment stage "
             "(or segment inside remove_background, whose 2 GiB it shares)",
             "both of the above")
    record = {"options": [{"option": n, "miou": float(iou[i].mean()), "acc_iou": float(iou[i, acc]), "cost": c}
                          for i, (n, c) in enumerate(zip(names, costs))],
              "note": f"{len(photos)} CCP test photos; `python -m closet_pipeline.train.isnet_head` "
                      f"({(time.time() - started) / 60:.0f} min; the head trained on the cached features of "
                      f"{len(cutouts.ccp_photos('train'))} train photos, one in {cutouts.HEAD_TRAIN_EVERY}, while the "
                      f"DeepLab parser trained on all {len(data.ccp_stems('train'))}). "
                      "Scored without the guided filter, so the figures are not the targets table's."}
    OUT.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
