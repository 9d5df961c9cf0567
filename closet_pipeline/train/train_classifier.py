"""Fine-tune the garment classifier from ImageNet MobileNetV2 with balanced sampling, export it to ONNX.

python -m closet_pipeline.train.train_classifier [--epochs N] [--threads N]

Every vocabulary label is drawn equally often (a label with fewer than MIN_DRAW_COUNT training
examples as if it had that many, so a handful of photos is not repeated hundreds of times), and
CCP's whole photos, which teach the image kind, as often as WORN_SHARE labels.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
import torch.nn.functional as F

from closet_pipeline import REPO_ROOT
from closet_pipeline.train import augment, data, pretrained
from closet_pipeline.train.export import export_onnx
from closet_pipeline.train.fit import DEVICE, fit
from closet_pipeline.train.nets import GarmentClassifier, load_pretrained
from shared.categories import LABELS
from shared.providers.garments.inputs import CLASSIFIER_SIDE
from shared.providers.garments.weights import CLASSIFIER

SEED = 13
RECORDS = REPO_ROOT / "docs" / "models"  # what MODELS.md reports
MIN_DRAW_COUNT = 20
WORN_SHARE = 2.0
KIND_WEIGHT = 0.5  # of the kind head's loss beside the label head's


def training_set(part: data.Part) -> data.Split:
    whole, crops = data.ccp_for_classifier(part)
    return data.concatenate(data.clothing(part), whole, crops)


def draw_weights(split: data.Split) -> torch.Tensor:
    """Each example's chance of being drawn: labels equally often, worn photos as WORN_SHARE labels."""
    labelled = split.targets != data.NO_TARGET
    counts = np.bincount(split.targets[labelled], minlength=len(LABELS))
    weights = np.where(labelled, 1.0 / np.maximum(counts[np.where(labelled, split.targets, 0)], MIN_DRAW_COUNT), 0.0)
    worn = ~labelled
    weights[worn] = WORN_SHARE / worn.sum()
    return torch.tensor(weights / weights.sum(), dtype=torch.float64)


def predict(model: torch.nn.Module, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(label probabilities, probability of 'worn') for N, H, W, 3 images."""
    model.eval()
    labels, kinds = [], []
    with torch.no_grad():
        for i in range(0, len(images), 64):
            x = augment.to_float(torch.from_numpy(images[i:i + 64]).to(DEVICE))
            label_logits, kind_logits = model(x.contiguous(memory_format=torch.channels_last))
            labels.append(torch.softmax(label_logits, 1).cpu())
            kinds.append(torch.softmax(kind_logits, 1)[:, data.WORN].cpu())
    return torch.cat(labels).numpy(), torch.cat(kinds).numpy()


def validation_line(model: torch.nn.Module, split: data.Split) -> str:
    labels, worn = predict(model, split.images)
    has_label, has_kind = split.targets != data.NO_TARGET, split.kinds != data.NO_TARGET
    right = labels.argmax(1) == split.targets
    present = np.unique(split.targets[has_label])
    balanced = np.mean([right[split.targets == label].mean() for label in present])
    kind_right = (worn >= 0.5) == (split.kinds == data.WORN)
    return f" | validation label-balanced top-1 {balanced:.3f}, kind {kind_right[has_kind].mean():.3f}"


def train(epochs: int, batch: int = 32, threads: int = 2, draws_per_epoch: int = 4096) -> torch.nn.Module:
    torch.manual_seed(SEED)
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(SEED)
    train_set, validation = training_set("train"), training_set("validation")
    print(f"classifier: {len(train_set.names)} train, {len(validation.names)} validation examples", flush=True)
    model = GarmentClassifier(len(LABELS))
    if missing := load_pretrained(model, pretrained.layers(pretrained.IMAGENET)):
        raise SystemExit(f"no pretrained weights for {missing}")
    model = model.to(DEVICE, memory_format=torch.channels_last)
    images = torch.from_numpy(train_set.images)
    targets, kinds = torch.from_numpy(train_set.targets).to(DEVICE), torch.from_numpy(train_set.kinds).to(DEVICE)
    weights = draw_weights(train_set)

    def batch_loss(index: torch.Tensor) -> torch.Tensor:
        x = augment.to_float(images[index].to(DEVICE))
        theta = augment.random_affine(len(index), generator, zoom=(0.75, 1.15), aspect=1.2, shift=0.1)
        x = augment.colour_jitter(augment.warp(x, theta, "bilinear", "border"), generator)
        label_logits, kind_logits = model(x.contiguous(memory_format=torch.channels_last))
        loss = F.cross_entropy(label_logits, targets[index], label_smoothing=0.1, ignore_index=data.NO_TARGET)
        if (kinds[index] != data.NO_TARGET).any():
            loss = loss + KIND_WEIGHT * F.cross_entropy(kind_logits, kinds[index], ignore_index=data.NO_TARGET)
        return loss

    heads = [p for name, p in model.named_parameters() if name.startswith(("labels.", "kinds."))]
    body = [p for name, p in model.named_parameters() if not name.startswith(("labels.", "kinds."))]
    settings = {"seed": SEED, "batch": batch, "draws_per_epoch": draws_per_epoch, "side": CLASSIFIER_SIDE,
                "labels": list(LABELS), "pretrained": pretrained.SHA256[pretrained.IMAGENET.name]}
    record = fit(model, "classifier", {**settings, "epochs": epochs}, epochs=epochs, steps=draws_per_epoch // batch,
                 batch=batch, groups=[{"params": body, "lr": 4e-4}, {"params": heads, "lr": 4e-3}],
                 weight_decay=1e-4, pct_start=0.15, generator=generator,
                 draw=lambda n: torch.multinomial(weights, n, replacement=True, generator=generator),
                 batch_loss=batch_loss, validation=lambda: validation_line(model, validation), validate_every=2)
    RECORDS.mkdir(parents=True, exist_ok=True)
    (RECORDS / "classifier-training.json").write_text(json.dumps(record, indent=2) + "\n")
    return model


class Probabilities(torch.nn.Module):
    """What ships: label probabilities and the probability that the photo shows a worn outfit."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        label_logits, kind_logits = self.model(x)
        return torch.softmax(label_logits, 1), torch.softmax(kind_logits, 1)[:, data.WORN]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model = train(args.epochs, threads=args.threads).to("cpu", memory_format=torch.contiguous_format)
    export_onnx(Probabilities(model), (1, 3, CLASSIFIER_SIDE, CLASSIFIER_SIDE), CLASSIFIER, ["labels", "worn"])


if __name__ == "__main__":
    main()
