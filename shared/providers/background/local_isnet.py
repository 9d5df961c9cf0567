"""IS-Net general-use (DIS) through onnxruntime: the default, in-process background remover.

One onnxruntime session per process, created on first use and reused: loading costs about a
second, a photo about two. The weights are IMG.LY's build of isnet-general-use, and the input is
normalised as IMG.LY feeds them (RGB/255 − 0.5), not as rembg does (divide by the image's maximum,
subtract ImageNet means). The output is min-max normalised like rembg's; on rembg's reference
photo the masks agree at IoU >= 0.99 (tests/test_local_isnet.py).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PIL import Image

from shared.media import model_weights
from shared.providers.background.base import BackgroundRemover

INPUT_SIDE = 1024


class LocalIsnetRemover(BackgroundRemover):
    name = "local"

    def __init__(self, model_path: Path, threads: int = 0) -> None:
        self.model_path = model_path
        self.threads = threads
        self._session = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings) -> "LocalIsnetRemover":
        # Resolved now so a missing model is reported at the first photo, with how to fix it.
        return cls(model_weights.resolve(settings.model_path, settings.model_dir, settings.model_variant), settings.onnx_threads)

    def _get_session(self):
        with self._lock:
            if self._session is None:
                import onnxruntime  # deferred: stages without the model never pay for the import

                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = self.threads
                options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
                self._session = onnxruntime.InferenceSession(
                    str(self.model_path), options, providers=["CPUExecutionProvider"]
                )
            return self._session

    def warm_up(self) -> None:
        self._get_session()

    @staticmethod
    def prepare(image: Image.Image) -> np.ndarray:
        """RGB photo -> 1x3x1024x1024 float32, RGB/255 minus 0.5 (IS-Net's normalisation)."""
        square = image.convert("RGB").resize((INPUT_SIDE, INPUT_SIDE), Image.Resampling.LANCZOS)
        tensor = np.asarray(square, dtype=np.float32) * (1.0 / 255.0) - 0.5
        return np.ascontiguousarray(tensor.transpose(2, 0, 1)[np.newaxis])

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        session = self._get_session()
        return session.run(None, {session.get_inputs()[0].name: tensor})[0]

    @staticmethod
    def to_mask(prediction: np.ndarray, size: tuple[int, int]) -> Image.Image:
        """Min-max normalise the model's output and scale it back to the photo's size."""
        pred = prediction[0, 0]
        low, high = float(pred.min()), float(pred.max())
        scaled = (pred - low) * (255.0 / max(high - low, 1e-6))
        mask = Image.fromarray(scaled.astype(np.uint8), mode="L")
        return mask.resize(size, Image.Resampling.LANCZOS)

    def mask(self, image: Image.Image) -> Image.Image:
        return self.to_mask(self.infer(self.prepare(image)), image.size)
