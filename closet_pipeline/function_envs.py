"""A function's zip as it runs: unpacked, in an environment installed from that zip's requirements.txt
alone, started through functions-framework. The local topology, the soak, the tests and `make
package`'s size table use this, so what runs here is what Cloud Functions builds from the same zip.

Environments are made with uv (`uv venv`, `uv pip install -r requirements.txt`): its shared package
cache makes a new one cost seconds. Each is kept under ~/.cache/closet-pipeline/venvs/ (or
CLOSET_VENV_CACHE), named by the hash of the requirements and the Python that runs them, so zips
with the same requirements share one and an edited requirements.txt gets a new one.

The Python is the one Terraform's runtime names (topology.json `runtime`: python311 -> python3.11)
where this machine has it; otherwise the one running this code, and `runtime_python()` says so.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from shared.topology import declaration


class EnvironmentFailed(RuntimeError):
    """A zip's requirements could not be installed (the message carries uv's own words)."""


@dataclass(frozen=True)
class RuntimePython:
    path: str
    version: str  # major.minor
    wanted: str  # what Terraform's runtime names
    note: str  # one line for people: which Python serves the functions, and why

    @property
    def matches(self) -> bool:
        return self.version == self.wanted


def runtime_python() -> RuntimePython:
    wanted = declaration().python_version
    found = shutil.which(f"python{wanted}")
    if found:
        version = _version_of(found)
        if version == wanted:
            return RuntimePython(found, version, wanted, f"functions run on {found} (Python {version}, as "
                                 f"Terraform's runtime {declaration().runtime})")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return RuntimePython(sys.executable, version, wanted,
                         f"functions run on {sys.executable} (Python {version}): no python{wanted} here, "
                         f"which Terraform's runtime {declaration().runtime} names")


def _version_of(python: str) -> str:
    done = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True, timeout=60)
    return done.stdout.strip()


def uv_binary() -> str:
    beside = Path(sys.executable).with_name("uv")  # the dev extra installs it into the venv
    found = str(beside) if beside.exists() else shutil.which("uv")
    if not found:
        raise EnvironmentFailed("uv is not installed: pip install -c constraints.txt uv (the dev extra has it)")
    return found


def cache_root() -> Path:
    configured = os.environ.get("CLOSET_VENV_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "closet-pipeline" / "venvs"


def requirements_key(requirements: str, python: RuntimePython) -> str:
    """Order, blank lines and comments aside: the same set of pins is the same environment."""
    lines = sorted(filter(None, (line.split("#", 1)[0].strip() for line in requirements.splitlines())))
    text = "\n".join([f"python {python.version} {python.path}", sys.platform, *lines])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def environment(requirements_file: Path, python: RuntimePython | None = None) -> Path:
    """The folder of a virtual environment holding exactly `requirements_file` (made once, then reused)."""
    python = python or runtime_python()
    key = requirements_key(Path(requirements_file).read_text(encoding="utf-8"), python)
    root = cache_root()
    target = root / key
    if (target / ".complete").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be making the same one
        if (target / ".complete").exists():
            return target
        shutil.rmtree(target, ignore_errors=True)  # a half-made one from an interrupted run
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "VIRTUAL_ENV": ""}
        env.pop("PYTHONPATH", None)
        steps = ([uv_binary(), "venv", "--quiet", "--relocatable", "--python", python.path, str(target)],
                 [uv_binary(), "pip", "install", "--quiet", "--python", str(target / "bin" / "python"),
                  "-r", str(requirements_file)])
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, env=env, timeout=900)
            if done.returncode != 0:
                shutil.rmtree(target, ignore_errors=True)
                raise EnvironmentFailed(f"{' '.join(step[1:3])} for {requirements_file} failed:\n"
                                        f"{done.stdout[-2000:]}{done.stderr[-3000:]}")
        (target / ".complete").write_text(requirements_file.read_text(encoding="utf-8"))
    return target


def unpack(zip_path: Path, dest: Path) -> Path:
    """The zip's files under `dest` (emptied first), as Cloud Functions lays them out in /workspace."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(dest)
    return dest


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python*/site-packages"))


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file() and not p.is_symlink())


def server_argv(venv: Path, spec, host: str, port: int) -> list[str]:
    """functions-framework serving the unpacked zip's main.py (run from its folder), as Cloud
    Functions serves `entryPoint` with the declared signature type."""
    return [str(venv / "bin" / "python"), "-m", "functions_framework", f"--target={spec.entry_point}",
            f"--signature-type={spec.signature}", "--source", "main.py", "--host", host, "--port", str(port)]


# Every module a zip carries, imported in its own environment from the zip alone: what a missing
# module or requirement would break at a cold start (or later, at the first photo) breaks here.
IMPORT_CHECK = """
import importlib, pathlib, sys
root = pathlib.Path.cwd()
sys.path.insert(0, str(root))
import main
import shared
assert pathlib.Path(shared.__file__).is_relative_to(root), "shared/ must come from the zip, not " + shared.__file__
assert callable(getattr(main, sys.argv[1], None)), "main." + sys.argv[1] + " is missing"
for path in sorted(root.joinpath("shared").rglob("*.py")):
    importlib.import_module(".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__"))
print("imported", len(sys.modules), "modules")
"""


def import_check(folder: Path, venv: Path, entry_point: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "python"), "-I", "-c", IMPORT_CHECK, entry_point], cwd=folder,
                          env=env, capture_output=True, text=True, timeout=300)


# What a zip's requirements.txt should hold, read in its own environment: the distributions its
# modules import (statically, lazy imports included; not under `if TYPE_CHECKING:`), and everything
# those depend on. A pin outside that closure is a dependency the function never loads ("unused");
# an imported distribution pinned only through another would be installed at whatever version that
# one allows ("unpinned"); an import nothing installs is "missing".
REQUIREMENTS_AUDIT = r"""
import ast, importlib.metadata as md, importlib.util, json, pathlib, re, sys
root = pathlib.Path.cwd()
sys.path.insert(0, str(root))
def norm(name): return re.sub(r"[-_.]+", "-", name).lower()
def runtime_nodes(tree):
    todo = [tree]
    while todo:
        node = todo.pop(); yield node
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            todo.extend(node.orelse); continue
        todo.extend(ast.iter_child_nodes(node))
names = set()
for path in root.rglob("*.py"):
    for node in runtime_nodes(ast.parse(path.read_bytes())):
        if isinstance(node, ast.Import): names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module); names |= {node.module + "." + a.name for a in node.names}
owner = {}
for dist in md.distributions():
    for f in dist.files or ():
        owner[str(f)] = norm(dist.metadata["Name"])
site = pathlib.Path(next(p for p in sys.path if p.endswith("site-packages")))
direct, missing = set(), set()
for name in sorted(names):
    top = name.split(".")[0]
    if top in sys.stdlib_module_names or top in ("shared", "main", "__future__"):
        continue
    if importlib.util.find_spec(top) is None:
        missing.add(top); continue
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            spec = importlib.util.find_spec(".".join(parts[:i]))
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin and spec.origin not in ("built-in", "frozen"):
            try:
                relative = str(pathlib.Path(spec.origin).relative_to(site))
            except ValueError:
                break
            if relative in owner:
                direct.add(owner[relative]); break
closure, todo = set(), list(direct)
while todo:
    name = todo.pop()
    if name in closure: continue
    try:
        requires = md.requires(name) or []
    except md.PackageNotFoundError:  # excluded by its environment marker (python_version < ...)
        continue
    closure.add(name)
    for req in requires:
        if "extra ==" in req: continue
        todo.append(norm(re.split(r"[ ;<>=!~\[(]", req, 1)[0]))
pinned = {norm(re.split(r"[ ;<>=!~\[]", line.split("#")[0].strip(), 1)[0])
          for line in root.joinpath("requirements.txt").read_text().splitlines() if line.split("#")[0].strip()}
print(json.dumps({"direct": sorted(direct), "unused": sorted(pinned - closure), "unpinned": sorted(direct - pinned),
                  "missing": sorted(missing)}))
"""


def requirements_audit(folder: Path, venv: Path) -> dict:
    import json

    done = subprocess.run([str(venv / "bin" / "python"), "-I", "-c", REQUIREMENTS_AUDIT], cwd=folder,
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise EnvironmentFailed(f"requirements audit in {folder} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)
