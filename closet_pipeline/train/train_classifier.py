"""Train the garment classifier from scratch on the clothing dataset's train part, export it to ONNX.

python -m closet_pipeline.train.train_classifier [--epochs N]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from closet_pipeline import REPO_ROOT
from closet_pipeline.train import augment, data
from closet_pipeline.train.export import export_onnx
from closet_pipeline.train.fit import fit
from closet_pipeline.train.nets import GarmentClassifier
from shared.categories import CLOTHING_LABELS
from shared.providers.garments.inputs import CLASSIFIER_SIDE
from shared.providers.garments.weights import CLASSIFIER

SEED = 13
RECORDS = REPO_ROOT / "docs" / "models"  # what MODELS.md reports


def accuracy(model: torch.nn.Module, split: data.Split) -> float:
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(augment.to_float(torch.from_numpy(split.images[i:i + 256])))
                            for i in range(0, len(split.images), 256)])
    return float((logits.argmax(1).numpy() == split.targets).mean())


def train(epochs: int, batch: int = 48, threads: int = 2) -> torch.nn.Module:
    torch.manual_seed(SEED)
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(SEED)
    started = time.time()
    train_set, validation = data.clothing("train"), data.clothing("validation")
    print(f"classifier: {len(train_set.names)} train, {len(validation.names)} validation photos "
          f"loaded in {time.time() - started:.0f} s", flush=True)
    model = GarmentClassifier(len(CLOTHING_LABELS), width=24)
    images, targets = torch.from_numpy(train_set.images), torch.from_numpy(train_set.targets)

    def batch_loss(index: torch.Tensor) -> torch.Tensor:
        x = augment.to_float(images[index])
        theta = augment.random_affine(len(index), generator, zoom=(0.7, 1.15), aspect=1.2, shift=0.12)
        x = augment.colour_jitter(augment.warp(x, theta, "bilinear", "border"), generator)
        return F.cross_entropy(model(x), targets[index], label_smoothing=0.1)

    fit(model, len(images), epochs=epochs, batch=batch, lr=4e-3, weight_decay=0.05, pct_start=0.15,
        generator=generator, batch_loss=batch_loss, started=started,
        validation=lambda: f" validation top-1 {accuracy(model, validation):.3f}")
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    started = time.time()
    model = train(args.epochs, threads=args.threads)
    RECORDS.mkdir(parents=True, exist_ok=True)
    (RECORDS / "classifier-training.json").write_text(json.dumps(
        {"epochs": args.epochs, "threads": args.threads, "seconds": round(time.time() - started), "seed": SEED}, indent=2) + "\n")
    export_onnx(model, (1, 3, CLASSIFIER_SIDE, CLASSIFIER_SIDE), CLASSIFIER, "logits")


if __name__ == "__main__":
    main()
