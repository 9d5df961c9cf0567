"""Fine-tune the garment parser from PASCAL DeepLabv3-MobileNetV2 on CCP's train part, export it to ONNX.

python -m closet_pipeline.train.train_parser [--epochs N] [--threads N]

The stem and the first three blocks (stride 2 and 4, generic edges and textures) stay as pretrained:
they cost half the backward pass at this resolution and change little.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from closet_pipeline import REPO_ROOT
from closet_pipeline.train import augment, data, pretrained
from closet_pipeline.train.export import export_onnx
from closet_pipeline.train.fit import DEVICE, fit
from closet_pipeline.train.nets import LOW_LEVEL_BLOCK, GarmentParser, load_pretrained
from shared.categories import PARSER_CLASSES
from shared.providers.garments.weights import PARSER

SEED = 13
RECORDS = REPO_ROOT / "docs" / "models"  # what MODELS.md reports
MAX_WEIGHT_RATIO = 15.0  # the rarest class weighs at most this much more than background
CROP = (256, 384)  # width, height of the window a training step sees of the 320 x 480 photo


class Probabilities(nn.Module):
    """What ships: class probabilities at a quarter of the input's resolution (the caller brings them
    up to the photo's size and refines them against it)."""

    def __init__(self, parser: nn.Module) -> None:
        super().__init__()
        self.parser = parser

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.parser(x), 1)


def class_weights(masks: np.ndarray) -> torch.Tensor:
    """Inverse square root of each class's pixel share (capped): belts and glasses count, background
    does not swamp them."""
    counts = np.bincount(masks[masks != data.IGNORE].ravel(), minlength=len(PARSER_CLASSES)).astype(np.float64)
    weights = 1.0 / np.sqrt(np.maximum(counts, 1) / counts.sum())
    weights = np.minimum(weights, weights.min() * MAX_WEIGHT_RATIO)
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def upsampled_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(model(x.contiguous(memory_format=torch.channels_last)), size=x.shape[2:], mode="bilinear",
                         align_corners=False)


def class_iou(model: nn.Module, split: data.Split) -> np.ndarray:
    """Per-class IoU at the parser's input resolution."""
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([upsampled_logits(model, augment.to_float(torch.from_numpy(split.images[i:i + 16]).to(DEVICE)))
                               .argmax(1).cpu() for i in range(0, len(split.images), 16)]).numpy()
    valid = split.targets != data.IGNORE
    return np.array([((predicted == c) & (split.targets == c) & valid).sum()
                     / max(1, (((predicted == c) | (split.targets == c)) & valid).sum())
                     for c in range(len(PARSER_CLASSES))])


def frozen(name: str) -> bool:
    if name.startswith("backbone.stem."):
        return True
    return name.startswith("backbone.blocks.") and int(name.split(".")[2]) <= LOW_LEVEL_BLOCK


def train(epochs: int, batch: int = 8, threads: int = 2) -> nn.Module:
    torch.manual_seed(SEED)
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(SEED)
    train_set, validation = data.ccp("train"), data.ccp("validation")
    print(f"parser: {len(train_set.names)} train, {len(validation.names)} validation photos", flush=True)
    weights = class_weights(train_set.targets).to(DEVICE)
    print("class weights", dict(zip(PARSER_CLASSES, np.round(weights.cpu().numpy(), 2))), flush=True)
    model = GarmentParser(len(PARSER_CLASSES))
    if missing := load_pretrained(model, pretrained.layers(pretrained.PASCAL)):
        raise SystemExit(f"no pretrained weights for {missing}")
    model = model.to(DEVICE, memory_format=torch.channels_last)
    images, masks = torch.from_numpy(train_set.images), torch.from_numpy(train_set.targets)
    new = ("low_level.", "decoder.", "classify.")
    for name, parameter in model.named_parameters():
        parameter.requires_grad = not frozen(name)
    fresh = [p for n, p in model.named_parameters() if n.startswith(new)]
    tuned = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith(new)]

    def batch_loss(index: torch.Tensor) -> torch.Tensor:
        x = augment.to_float(images[index].to(DEVICE))
        y = masks[index].to(DEVICE).float().unsqueeze(1)
        theta = augment.random_affine(len(index), generator, zoom=(0.7, 1.3), aspect=1.15, shift=0.1)
        x = augment.colour_jitter(augment.warp(x, theta, "bilinear", "zeros"), generator)
        # Outside the photo (zoomed out) is background, as the zero padding shows it.
        y = augment.warp(y, theta, "nearest", "zeros").squeeze(1).long()
        # A random window of the batch: 64 % of the pixels per step, the whole photo over the epochs.
        top = int(torch.randint(0, x.shape[2] - CROP[1] + 1, (1,), generator=generator))
        left = int(torch.randint(0, x.shape[3] - CROP[0] + 1, (1,), generator=generator))
        x, y = x[:, :, top:top + CROP[1], left:left + CROP[0]], y[:, top:top + CROP[1], left:left + CROP[0]]
        return F.cross_entropy(upsampled_logits(model, x), y, weight=weights, ignore_index=data.IGNORE)

    def validation_line() -> str:
        iou = class_iou(model, validation)
        return (" | validation IoU " + " ".join(f"{c} {v:.2f}" for c, v in zip(PARSER_CLASSES, iou))
                + f" | garments {iou[3:].mean():.3f}")

    settings = {"seed": SEED, "batch": batch, "size": data.PARSER_TRAINING_SIZE, "crop": CROP, "epochs": epochs,
                "classes": list(PARSER_CLASSES), "pretrained": pretrained.SHA256[pretrained.PASCAL.name]}
    record = fit(model, "parser", settings, epochs=epochs, steps=len(images) // batch, batch=batch,
                 groups=[{"params": tuned, "lr": 6e-4}, {"params": fresh, "lr": 4e-3}], weight_decay=1e-4,
                 pct_start=0.1, generator=generator, draw=lambda n: torch.randperm(len(images), generator=generator)[:n],
                 batch_loss=batch_loss, validation=validation_line)
    RECORDS.mkdir(parents=True, exist_ok=True)
    (RECORDS / "parser-training.json").write_text(json.dumps(record, indent=2) + "\n")
    return Probabilities(model.to("cpu", memory_format=torch.contiguous_format)).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model = train(args.epochs, threads=args.threads)
    width, height = data.PARSER_TRAINING_SIZE
    export_onnx(model, (1, 3, height, width), PARSER, ["probabilities"], dynamic_size=True)


if __name__ == "__main__":
    main()
