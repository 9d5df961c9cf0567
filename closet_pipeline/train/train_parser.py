"""Train the garment parser from scratch on CCP's train part, export it to ONNX.

python -m closet_pipeline.train.train_parser [--epochs N]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from closet_pipeline import REPO_ROOT
from closet_pipeline.train import augment, data
from closet_pipeline.train.export import export_onnx
from closet_pipeline.train.fit import fit
from closet_pipeline.train.nets import GarmentParser
from shared.categories import PARSER_CLASSES
from shared.providers.garments.inputs import PARSER_SIZE
from shared.providers.garments.weights import PARSER

SEED = 13
RECORDS = REPO_ROOT / "docs" / "models"  # what MODELS.md reports


class Probabilities(nn.Module):
    """What ships: class probabilities at the input's resolution."""

    def __init__(self, parser: nn.Module) -> None:
        super().__init__()
        self.parser = parser

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = F.interpolate(self.parser(x), scale_factor=2.0, mode="bilinear", align_corners=False)
        return torch.softmax(logits, 1)


def class_weights(masks: np.ndarray) -> torch.Tensor:
    """Inverse square root of each class's pixel share: shoes and accessories count, background does not swamp."""
    counts = np.bincount(masks[masks != data.IGNORE].ravel(), minlength=len(PARSER_CLASSES)).astype(np.float64)
    weights = 1.0 / np.sqrt(counts / counts.sum())
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def mean_iou(model: nn.Module, split: data.Split) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([Probabilities(model)(augment.to_float(torch.from_numpy(split.images[i:i + 32]))).argmax(1)
                               for i in range(0, len(split.images), 32)]).numpy()
    valid = split.targets != data.IGNORE
    return np.array([((predicted == c) & (split.targets == c) & valid).sum()
                     / max(1, (((predicted == c) | (split.targets == c)) & valid).sum())
                     for c in range(len(PARSER_CLASSES))])


def train(epochs: int, batch: int = 8, threads: int = 2) -> nn.Module:
    torch.manual_seed(SEED)
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(SEED)
    started = time.time()
    train_set, validation = data.ccp("train"), data.ccp("validation")
    print(f"parser: {len(train_set.names)} train, {len(validation.names)} validation photos "
          f"loaded in {time.time() - started:.0f} s", flush=True)
    weights = class_weights(train_set.targets)
    print("class weights", dict(zip(PARSER_CLASSES, np.round(weights.numpy(), 2))), flush=True)
    model = GarmentParser(len(PARSER_CLASSES))
    images = torch.from_numpy(train_set.images)
    masks = torch.from_numpy(train_set.targets)

    def batch_loss(index: torch.Tensor) -> torch.Tensor:
        x = augment.to_float(images[index])
        y = masks[index].float().unsqueeze(1)
        theta = augment.random_affine(len(index), generator, zoom=(0.75, 1.25), aspect=1.15, shift=0.1)
        x = augment.colour_jitter(augment.warp(x, theta, "bilinear", "zeros"), generator)
        # Outside the photo (zoomed out) is background, as the zero padding shows it.
        y = augment.warp(y, theta, "nearest", "zeros").squeeze(1).long()
        logits = F.interpolate(model(x), scale_factor=2.0, mode="bilinear", align_corners=False)
        return F.cross_entropy(logits, y, weight=weights, ignore_index=data.IGNORE)

    def validation_line() -> str:
        iou = mean_iou(model, validation)
        return (" validation IoU " + " ".join(f"{c} {v:.2f}" for c, v in zip(PARSER_CLASSES, iou))
                + f" | garments {iou[3:].mean():.3f}")

    fit(model, len(images), epochs=epochs, batch=batch, lr=3e-3, weight_decay=0.01, pct_start=0.1,
        generator=generator, batch_loss=batch_loss, validation=validation_line, started=started)
    return Probabilities(model).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    started = time.time()
    model = train(args.epochs, threads=args.threads)
    RECORDS.mkdir(parents=True, exist_ok=True)
    (RECORDS / "parser-training.json").write_text(json.dumps(
        {"epochs": args.epochs, "threads": args.threads, "seconds": round(time.time() - started), "seed": SEED}, indent=2) + "\n")
    width, height = PARSER_SIZE
    export_onnx(model, (1, 3, height, width), PARSER, "probabilities")


if __name__ == "__main__":
    main()
