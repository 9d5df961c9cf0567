"""Build one deployable zip per Cloud Function, deterministically.

Each zip holds, at its root, what Cloud Functions' Python buildpack expects:

    main.py             the function (entry point `handle`), from functions/<name>/
    requirements.txt    its dependencies, from functions/<name>/
    ...                 any other file in functions/<name>/
    shared/...          the modules of shared/ that main.py reaches (closet_pipeline/imports.py), the
                        packages above them, and the data files of those packages (topology.json, ...)
    models/isnet.ort-optimised.onnx   remove_background only: the IS-Net graph the settings choose
                        (model_variant, model_input_side), as onnxruntime optimised it here (so the
                        function's cold start skips that), and nothing else: the raw graph is never
                        loaded by the function. Terraform's CLOSET_MODEL_PATH names this file.

The functions to build are the ones shared/topology.json declares (shared.topology reads it, from
the same tree as the code), so packaging and Terraform (which reads the same file) cannot disagree.

Files come from git's tree (HEAD unless --rev says otherwise), never from the working tree, so an
untracked or uncommitted file cannot ship. The local topology builds from the working tree instead
(git's tracked and untracked-not-ignored files, as they are on disk), so what is being edited is
what it runs; on a clean checkout both give the same bytes. The bytes of a zip depend only on what it carries: entries
are sorted, every timestamp is 1980-01-01 00:00:00 and permissions are fixed. Terraform names each
uploaded object by the zip's md5, so a function is redeployed only when something it runs changed.

    python -m closet_pipeline.packaging --out build/functions [--model PATH] [--only NAME ...] [--rev REV] [--sizes]

`--sizes` also installs each zip's requirements (closet_pipeline/function_envs.py) and prints each
zip's size, compressed and installed, against Cloud Functions' limits (README's table comes from it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from closet_pipeline import REPO_ROOT
from closet_pipeline.imports import Tree, module_of, path_of, reachable
from shared.providers.background import local_isnet
from shared.topology import parse as parse_declaration

# The optimised graph, alone: the function's env has CLOSET_MODEL_PATH=/workspace/<this> (terraform/main.tf).
MODEL_ARCNAME = f"models/isnet{local_isnet.OPTIMISED_SUFFIX}"
MODEL_FUNCTION = "remove_background"  # the only function whose zip carries the model
DECLARATION = "shared/topology.json"
REQUIRED_FILES = ("main.py", "requirements.txt")

_FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
_FILE_MODE = 0o644
_STORED_SUFFIXES = {".onnx", ".zip", ".png", ".jpg", ".jpeg", ".webp"}  # already compressed or not worth it


class PackagingError(Exception):
    """A function cannot be packaged (its folder, a required file or the model is missing)."""


def function_names(tree: Tree) -> list[str]:
    """Every function the tree's topology.json declares (shared.topology reads it)."""
    return parse_declaration(json.loads(tree.read(DECLARATION))).names


def default_model_path() -> Path:
    """Where the pipeline caches the graph the settings choose (variant and input side)."""
    from shared.config import Settings
    from shared.media import model_weights

    settings = Settings()
    return model_weights.cached_path(settings.model_dir, settings.model_variant, settings.model_input_side)


def optimised_graph(model: Path) -> bytes:
    """onnxruntime's optimised form of the model, as remove_background loads it at a cold start.
    Kept beside the cached weights, named by the model's sha256 and onnxruntime's version, so a
    rebuild (the local topology builds its zips at every start) does not optimise again."""
    import onnxruntime

    from shared.media.model_weights import sha256_of

    cached = default_model_path().parent / f"optimised-{sha256_of(model)[:16]}-ort{onnxruntime.__version__}.onnx"
    if cached.is_file():
        return cached.read_bytes()
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / "optimised.onnx"
        try:
            local_isnet.save_optimised(model, target)
        except Exception as exc:  # onnxruntime's own errors: not an ONNX file, unsupported graph
            raise PackagingError(f"{MODEL_FUNCTION}: onnxruntime cannot optimise the model {model}: {exc}") from exc
        data = target.read_bytes()
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(data)
        partial.replace(cached)
    except OSError:
        pass  # a read-only cache only costs the next build its time
    return data


def build_all(
    out_dir: Path,
    model_path: Path | None = None,
    *,
    names: Iterable[str] | None = None,
    root: Path = REPO_ROOT,
    rev: str | None = "HEAD",
) -> dict[str, Path]:
    """Build `<out_dir>/<name>.zip` for every function (or just `names`); return name -> zip path.
    `rev=None` packages the working tree (the local topology), any other value git's tree at it.

    `model_path` is the IS-Net ONNX file for remove_background; without one the cached model
    (default_model_path()) is used if it exists. Every other function
    is built first, so a missing model fails remove_background only, with a PackagingError.
    """
    out_dir = Path(out_dir)
    root = Path(root)
    try:
        tree = Tree.from_worktree(root) if rev is None else Tree.from_git(root, rev)
    except subprocess.CalledProcessError as exc:
        raise PackagingError(f"cannot read git's tree at {rev} in {root}: {exc.stderr.decode().strip()}") from None
    all_names = function_names(tree)
    selected = all_names if names is None else list(names)
    unknown = sorted(set(selected) - set(all_names))
    if unknown:
        raise PackagingError(
            f"not functions of shared/topology.json: {', '.join(unknown)} (known: {', '.join(all_names)})"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    built: dict[str, Path] = {}
    deferred: list[str] = []
    for name in selected:
        if name == MODEL_FUNCTION:
            deferred.append(name)  # built last: it is the only one that can fail for want of the model
            continue
        built[name] = _build_one(name, out_dir, tree, extra={})
    for name in deferred:
        model = _resolve_model(model_path)
        built[name] = _build_one(name, out_dir, tree, extra={MODEL_ARCNAME: optimised_graph(model)})
    return {name: built[name] for name in selected}


def md5_of(path: Path) -> str:
    digest = hashlib.md5()  # an identity, as Terraform's filemd5() computes it
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- internals ----------------------------------------------------------------------------------


def _resolve_model(model_path: Path | None) -> Path:
    if model_path is not None:
        model = Path(model_path).expanduser()
        if not model.is_file():
            raise PackagingError(f"{MODEL_FUNCTION}: the model file given with --model does not exist: {model}")
        return model
    try:
        model = default_model_path()
    except Exception as exc:  # a bad CLOSET_* variable in the environment
        raise PackagingError(f"{MODEL_FUNCTION}: cannot read the model location from the settings: {exc}") from exc
    if not model.is_file():
        raise PackagingError(
            f"{MODEL_FUNCTION}: its zip must carry the IS-Net model ({MODEL_ARCNAME}), but no --model was "
            f"given and the cached model does not exist at {model}. Fetch it once with `make model` "
            f"(closet-pipeline fetch-model), or pass --model PATH."
        )
    return model


def carried(name: str, tree: Tree) -> dict[str, str]:
    """archive name -> path in the tree, for everything one function's zip carries but the model."""
    folder = f"functions/{name}/"
    own = {path.removeprefix(folder): path for path in tree.paths if path.startswith(folder)}
    if not own:
        raise PackagingError(f"{name}: no function folder {folder} in git's tree (is it committed?)")
    for required in REQUIRED_FILES:
        if required not in own:
            raise PackagingError(f"{name}: {folder}{required} is missing from git's tree")
    modules = reachable(tree, [tree.read(path) for path in own.values() if path.endswith(".py")])
    shipped = {path_of(module, tree) for module in modules if module.split(".")[0] == "shared"}
    packages = {module for module in modules if (path_of(module, tree) or "").endswith("__init__.py")}
    for path in tree.paths:  # a package's data files travel with it (topology.json, model files)
        if path.startswith("shared/") and not path.endswith(".py") and _package_of(path, tree) in packages:
            shipped.add(path)
    return {**own, **{path: path for path in shipped}}


def _package_of(path: str, tree: Tree) -> str:
    """The nearest folder above a data file that is a Python package."""
    folder = path.rpartition("/")[0]
    while folder and f"{folder}/__init__.py" not in tree.paths:
        folder = folder.rpartition("/")[0]
    return module_of(folder)


def _build_one(name: str, out_dir: Path, tree: Tree, extra: dict[str, bytes]) -> Path:
    entries = {arcname: tree.read(path) for arcname, path in carried(name, tree).items()}
    for arcname, data in extra.items():
        if arcname in entries:
            raise PackagingError(f"{name}: two sources for {arcname} in the zip")
        entries[arcname] = data
    target = out_dir / f"{name}.zip"
    _write_zip(target, entries)
    return target


def _write_zip(target: Path, entries: dict[str, bytes]) -> None:
    """Write the zip to a temporary file, then move it into place (never a half-written zip)."""
    handle, temporary = tempfile.mkstemp(prefix=f".{target.stem}-", suffix=".zip", dir=target.parent)
    os.close(handle)
    try:
        with zipfile.ZipFile(temporary, "w") as archive:
            for arcname in sorted(entries):
                info = zipfile.ZipInfo(arcname, date_time=_FIXED_DATE_TIME)
                info.create_system = 3  # Unix, whichever OS builds it
                info.external_attr = (0o100000 | _FILE_MODE) << 16  # a regular file, rw-r--r--
                stored = Path(arcname).suffix in _STORED_SUFFIXES
                archive.writestr(
                    info,
                    entries[arcname],
                    compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED,
                    compresslevel=None if stored else 9,
                )
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# Cloud Functions' documented "Max deployment size" (cloud.google.com/functions/quotas): 100 MB
# compressed sources and 500 MB uncompressed sources plus modules for 1st gen; 2nd gen lists none
# (N/A: the zip becomes a container image). The 1st gen figures are kept as the yardstick.
LIMIT_COMPRESSED = 100 * 1000 * 1000
LIMIT_INSTALLED = 500 * 1000 * 1000


def size_table(built: dict[str, Path], scratch: Path) -> str:
    """Markdown: each zip's size, and with its requirements installed, against those limits."""
    from closet_pipeline import function_envs

    python = function_envs.runtime_python()
    rows = ["| Function | Zip (compressed) | Installed (unpacked zip + its requirements) |", "| --- | ---: | ---: |"]
    for name, path in built.items():
        folder = function_envs.unpack(path, Path(scratch) / name)
        venv = function_envs.environment(folder / "requirements.txt", python)
        installed = function_envs.folder_bytes(folder) + function_envs.folder_bytes(function_envs.site_packages(venv))
        compressed = path.stat().st_size
        rows.append(f"| {name} | {compressed / 1e6:.2f} MB ({compressed / LIMIT_COMPRESSED:.0%} of 100 MB) "
                    f"| {installed / 1e6:.1f} MB ({installed / LIMIT_INSTALLED:.0%} of 500 MB) |")
    return "\n".join(rows) + f"\n\n(installed with Python {python.version}: {python.note})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m closet_pipeline.packaging",
        description="Build one deterministic zip per Cloud Function (the functions shared/topology.json names).",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("build/functions"), help="output folder (default: build/functions)"
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help=f"IS-Net ONNX file for {MODEL_FUNCTION} (default: the cached model in Settings.model_dir)",
    )
    parser.add_argument("--only", nargs="+", metavar="NAME", default=None, help="build only these functions")
    parser.add_argument("--rev", default="HEAD", help="the git revision to package (default: HEAD)")
    parser.add_argument("--sizes", action="store_true",
                        help="also install each zip's requirements and print the sizes against the limits")
    args = parser.parse_args(argv)
    try:
        built = build_all(args.out, args.model, names=args.only, rev=args.rev)
    except PackagingError as exc:
        print(f"packaging failed: {exc}", file=sys.stderr)
        return 1
    for name, path in built.items():
        print(f"{name:<20} {md5_of(path)}  {path}  ({path.stat().st_size:,} bytes)")
    if args.sizes:
        with tempfile.TemporaryDirectory() as scratch:
            print()
            print(size_table(built, Path(scratch)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
