"""Export a trained network to ONNX (opset 17), check onnxruntime agrees with torch, pin its sha256."""

from __future__ import annotations

import ast
import pprint
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from shared import garment_models as pins
from shared.media.model_weights import sha256_of
from shared.providers.garments.weights import MODELS_DIR

PINS_FILE = Path(pins.__file__)


def export_onnx(model: torch.nn.Module, shape: tuple[int, ...], name: str, outputs: list[str],
                dynamic_size: bool = False) -> Path:
    """Write `name` in the models folder; batch is dynamic, and height and width too with `dynamic_size`."""
    model.eval()
    path = MODELS_DIR / name
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    image_axes = {0: "batch", 2: "height", 3: "width"} if dynamic_size else {0: "batch"}
    torch.onnx.export(model, (example,), str(path), opset_version=17, input_names=["image"], output_names=outputs,
                      dynamic_axes={"image": image_axes, **{o: {0: "batch"} for o in outputs}}, dynamo=False)
    with torch.no_grad():
        expected = model(example)
    expected = [t.numpy() for t in (expected if isinstance(expected, tuple) else (expected,))]
    got = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": example.numpy()})
    difference = max(float(np.abs(e - g).max()) for e, g in zip(expected, got))
    if difference > 1e-3:
        raise SystemExit(f"{name}: onnxruntime differs from torch by {difference}")
    print(f"{name}: {path.stat().st_size / 1e6:.2f} MB, onnxruntime matches torch (max difference {difference:.1e})")
    pin(name, sha256_of(path))
    return path


def pin(name: str, sha256: str) -> None:
    # Read the file again: the other model may have been pinned by another process since this one started.
    written = ast.literal_eval(PINS_FILE.read_text().split("PINS = ", 1)[1])
    current = dict(written, **{name: sha256})
    PINS_FILE.write_text("# Written by `make models` (closet_pipeline.train.export): the sha256 of each committed "
                         "model file.\nPINS = " + pprint.pformat(current, width=120) + "\n")
    pins.PINS.update(current)
