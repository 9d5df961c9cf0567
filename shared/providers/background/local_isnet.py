"""IS-Net general-use (DIS) through onnxruntime: the default, in-process background remover.

One onnxruntime session per process, created on first use and reused: loading costs about a
second, a photo about two. The weights are IMG.LY's build of isnet-general-use, and the input is
normalised as IMG.LY feeds them (RGB/255 − 0.5), not as rembg does (divide by the image's maximum,
subtract ImageNet means). The output is min-max normalised like rembg's; on rembg's reference
photo the masks agree at IoU >= 0.99 (tests/test_local_isnet.py).

The input side (1024, or a graph derived for 896/768/640 by fetch-model) and the resampling into and
out of the model (BILINEAR by default: LANCZOS costs more for the same IoU) are settings; docs/floor.md
has the measurements behind the defaults.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PIL import Image

from shared.errors import ModelUnavailable
from shared.media import model_weights
from shared.providers.background.base import BackgroundRemover

RESAMPLING = {"lanczos": Image.Resampling.LANCZOS, "bilinear": Image.Resampling.BILINEAR}

# A graph onnxruntime has already optimised (made when the zips are built: closet_pipeline/packaging.py)
# sits next to the model under this suffix; loading it with optimisation off saves most of the start.
OPTIMISED_SUFFIX = ".ort-optimised.onnx"


# The final mask only: the graph also outputs five side masks and six decoder feature maps (about
# 120 MB of float32 a photo), which session.run(None, ...) would copy out for nothing.
MASK_ONLY = ["output"]


def optimised_path(model_path: Path) -> Path:
    return Path(model_path).with_name(Path(model_path).name.removesuffix(".onnx") + OPTIMISED_SUFFIX)


def session_options(threads: int = 0, optimise: bool = True):
    import onnxruntime  # deferred: stages without the model never pay for the import

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = (onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL if optimise
                                        else onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL)
    return options


def save_optimised(model_path: Path, target: Path) -> Path:
    """Let onnxruntime optimise the graph once and write the result (at packaging time).

    ORT_ENABLE_EXTENDED, not ALL: ALL adds layout transforms tied to the CPU that made them."""
    import onnxruntime

    options = session_options()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(target)
    onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    return target


class LocalIsnetRemover(BackgroundRemover):
    name = "local"

    def __init__(self, model_path: Path, threads: int = 0, side: int = model_weights.PUBLISHED_SIDE,
                 resampling: str = "lanczos") -> None:
        self.model_path = model_path
        self.threads = threads
        self.side = model_weights.check_side(side)
        self.resampling = RESAMPLING[resampling]
        self._session = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings) -> "LocalIsnetRemover":
        # Resolved now so a missing model is reported at the first photo, with how to fix it.
        side = settings.model_input_side
        path = model_weights.resolve(settings.model_path, settings.model_dir, settings.model_variant, side)
        return cls(path, settings.onnx_threads, side, settings.model_resampling)

    def _get_session(self):
        with self._lock:
            if self._session is None:
                import onnxruntime

                optimised = optimised_path(self.model_path)
                if optimised.is_file():
                    # Optimised at packaging time (EXTENDED). Still loaded at ALL: ALL's layout passes
                    # are cheap at load, and without them the medium graph ran 3x slower (docs/floor.md).
                    self._session = onnxruntime.InferenceSession(
                        str(optimised), session_options(self.threads), providers=["CPUExecutionProvider"])
                else:
                    self._session = onnxruntime.InferenceSession(
                        str(self.model_path), session_options(self.threads), providers=["CPUExecutionProvider"])
                graph_side = self._session.get_inputs()[0].shape[-1]
                if graph_side != self.side:
                    self._session = None
                    raise ModelUnavailable(f"{self.model_path} takes {graph_side}x{graph_side} input, but "
                                           f"CLOSET_MODEL_INPUT_SIDE is {self.side}. {model_weights.HOW_TO_FIX}")
            return self._session

    def warm_up(self) -> None:
        self._get_session()

    def prepare(self, image: Image.Image) -> np.ndarray:
        """RGB photo -> 1x3xSxS float32, RGB/255 minus 0.5 (IS-Net's normalisation)."""
        square = image.convert("RGB").resize((self.side, self.side), self.resampling)
        tensor = np.asarray(square, dtype=np.float32) * (1.0 / 255.0) - 0.5
        return np.ascontiguousarray(tensor.transpose(2, 0, 1)[np.newaxis])

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        session = self._get_session()
        return session.run(MASK_ONLY, {session.get_inputs()[0].name: tensor})[0]

    def to_mask(self, prediction: np.ndarray, size: tuple[int, int]) -> Image.Image:
        """Min-max normalise the model's output and scale it back to the photo's size."""
        pred = prediction[0, 0]
        low, high = float(pred.min()), float(pred.max())
        scaled = (pred - low) * (255.0 / max(high - low, 1e-6))
        mask = Image.fromarray(scaled.astype(np.uint8), mode="L")
        return mask.resize(size, self.resampling)

    def mask(self, image: Image.Image) -> Image.Image:
        return self.to_mask(self.infer(self.prepare(image)), image.size)
