"""The import graph of the repository's own packages, read statically (nothing is imported).

Packaging uses it to put in a function's zip only the `shared/` modules its entry point can reach;
the layout test uses it to keep `shared/` free of tooling imports and of cycles. Imports inside
functions count (they run sooner or later), and so do strings that name a module, such as the
providers' "shared.providers.x.y:Class" registries, which are imported by name at run time.
"""

from __future__ import annotations

import ast
import re
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

_MODULE_STRING = re.compile(r"(?:shared|closet_pipeline)(?:\.[A-Za-z_][A-Za-z0-9_]*)+(?=:|$)")


@dataclass(frozen=True)
class Tree:
    """A set of files and a way to read them: git's tree at a revision, or a folder on disk."""

    paths: frozenset[str]
    read: Callable[[str], bytes]

    @classmethod
    def from_git(cls, root: Path, rev: str = "HEAD") -> "Tree":
        listed = subprocess.run(["git", "-C", str(root), "ls-tree", "-r", "-z", "--full-tree", rev],
                                capture_output=True, check=True).stdout
        blobs = {}
        for entry in filter(None, listed.split(b"\0")):
            meta, path = entry.split(b"\t", 1)
            mode, kind, sha = meta.split()
            if kind == b"blob" and mode != b"120000":  # no symlinks in a zip
                blobs[path.decode()] = sha.decode()

        def read(path: str) -> bytes:
            return subprocess.run(["git", "-C", str(root), "cat-file", "blob", blobs[path]],
                                  capture_output=True, check=True).stdout

        return cls(frozenset(blobs), read)

    @classmethod
    def from_worktree(cls, root: Path) -> "Tree":
        """What a commit of the working tree would hold: tracked and untracked-but-not-ignored files,
        read from disk as they are now (the local topology runs what is being edited)."""
        root = Path(root)
        listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                capture_output=True, check=True).stdout
        paths = frozenset(path for path in listed.decode().split("\0")
                          if path and (root / path).is_file() and not (root / path).is_symlink())
        return cls(paths, lambda path: (root / path).read_bytes())

    @classmethod
    def from_folder(cls, root: Path) -> "Tree":
        root = Path(root)
        paths = frozenset(p.relative_to(root).as_posix() for p in root.rglob("*")
                          if p.is_file() and "__pycache__" not in p.parts and ".git" not in p.parts)
        return cls(paths, lambda path: (root / path).read_bytes())


def module_of(path: str) -> str:
    return path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def path_of(module: str, tree: Tree) -> str | None:
    base = module.replace(".", "/")
    for candidate in (f"{base}.py", f"{base}/__init__.py"):
        if candidate in tree.paths:
            return candidate
    return None


def imports_of(source: bytes, tree: Tree, roots: Iterable[str] = ("shared", "closet_pipeline")) -> set[str]:
    """The modules of `roots` that one file's source names, resolved against the tree."""
    roots = tuple(roots)
    named: set[str] = set()
    for node in _runtime_nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            named.add(node.module)
            named.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from pkg import module`
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_STRING.match(node.value):
            named.add(node.value.split(":")[0])
    found = set()
    for name in named:
        if name.split(".")[0] not in roots:
            continue
        while name and path_of(name, tree) is None:  # `from shared.x import function`
            name = name.rpartition(".")[0]
        if name:
            found.add(name)
    return found


def _runtime_nodes(module: ast.AST):
    """Every node but what sits under `if TYPE_CHECKING:` (annotations only: it never runs)."""
    todo = [module]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def graph(tree: Tree, root: str) -> dict[str, set[str]]:
    """module -> the modules (of both packages) it imports, for every module under `root`."""
    edges = {module_of(path): imports_of(tree.read(path), tree)
             for path in sorted(tree.paths) if path.startswith(f"{root}/") and path.endswith(".py")}
    return {module: deps - {module} for module, deps in edges.items()}  # naming itself (`python -m`) is no import


def reachable(tree: Tree, start_sources: Iterable[bytes]) -> set[str]:
    """Every module the given sources reach, with the packages above each (their __init__ runs)."""
    todo = set().union(*(imports_of(source, tree) for source in start_sources))
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo.update(".".join(parts[:i]) for i in range(1, len(parts)))
        todo.update(imports_of(tree.read(path_of(module, tree)), tree))
    return seen


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles between modules (Tarjan's strongly connected components larger than one)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found
