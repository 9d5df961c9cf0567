"""The committed garment models: where they are, their pinned sha256, one onnxruntime session each.

A file whose sha256 is not the pinned one is refused (ModelUnavailable), as the IS-Net weights are:
what runs is what was trained and measured in MODELS.md.
"""

from __future__ import annotations

import threading
from pathlib import Path

import onnxruntime

from shared.errors import ModelUnavailable
from shared.garment_models import PINS
from shared.media.model_weights import sha256_of

MODELS_DIR = Path(__file__).resolve().parent / "models"
CLASSIFIER = "garment-classifier.onnx"
PARSER = "garment-parser.onnx"
HOW_TO_FIX = "Restore it from git (`git checkout -- shared/providers/garments/models`) or rebuild it with `make models`."

_sessions: dict[tuple[Path, int], onnxruntime.InferenceSession] = {}
_lock = threading.Lock()


def verified(name: str, directory: Path = MODELS_DIR) -> Path:
    path = Path(directory) / name
    if not path.is_file():
        raise ModelUnavailable(f"The garment model {path} is missing. {HOW_TO_FIX}")
    actual = sha256_of(path)
    if actual != PINS[name]:
        raise ModelUnavailable(f"The garment model {path} has sha256 {actual}, expected {PINS[name]}; not used. {HOW_TO_FIX}")
    return path


def session(name: str, directory: Path = MODELS_DIR, threads: int = 0) -> onnxruntime.InferenceSession:
    """The process's one session for a model file, verified and loaded on first use."""
    key = (Path(directory) / name, threads)
    with _lock:
        if key not in _sessions:
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            _sessions[key] = onnxruntime.InferenceSession(
                str(verified(name, directory)), options, providers=["CPUExecutionProvider"])
        return _sessions[key]
