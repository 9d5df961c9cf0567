"""The folders show the architecture: `shared/` (what functions run) never imports the tooling in
`closet_pipeline/`, neither modules nor packages import each other in a cycle, the stage layer
imports nothing of the runtime, no function in `shared/` is longer than 60 lines, and each fact the
issue found copied is defined once."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from closet_pipeline.imports import Tree, cycles, graph, path_of
from shared.errors import HttpErrorCode

REPO = Path(__file__).resolve().parent.parent
TREE = Tree.from_folder(REPO)


def test_the_runtime_never_imports_the_tooling():
    offenders = {module: sorted(d for d in deps if d.startswith("closet_pipeline"))
                 for module, deps in graph(TREE, "shared").items()}
    assert {m: d for m, d in offenders.items() if d} == {}


def test_no_import_cycles():
    for root in ("shared", "closet_pipeline"):
        edges = graph(TREE, root)
        # a package's __init__ importing its own submodules is how a package exports: not a cycle
        edges = {m: {d for d in deps if not m.startswith(d + ".") and not d.startswith(m + ".")}
                 for m, deps in edges.items()}
        assert cycles(edges) == [], root


def package_graph(root: str) -> dict[str, set[str]]:
    """package -> the packages its modules import. A module's package is the folder it is in (a
    package's __init__ is the package itself); an __init__ importing its own submodules exports them.
    The modules at the root (shared's contracts, closet_pipeline's commands) are nodes of their own:
    they are the layers' top and bottom, not one room."""
    def package(module: str) -> str:
        if (path_of(module, TREE) or "").endswith("__init__.py") or module.count(".") == 1:
            return module
        return module.rpartition(".")[0]

    edges: dict[str, set[str]] = {}
    for module, deps in graph(TREE, root).items():
        for dep in deps:
            if package(module) == module and dep.startswith(module + "."):
                continue
            if package(module) != package(dep):
                edges.setdefault(package(module), set()).add(package(dep))
    return edges


def test_no_import_cycles_between_packages():
    assert cycles(package_graph("shared")) == []
    assert {"shared.stages", "shared.runtime"} <= set(package_graph("shared"))  # the check sees them
    assert cycles(package_graph("closet_pipeline")) == []
    assert {"closet_pipeline.dev", "closet_pipeline.train"} <= set(package_graph("closet_pipeline"))


def test_the_stage_layer_imports_no_runtime_module():
    """The runtime runs stages; a stage only returns its outcome (shared/stages/context.py)."""
    offenders = {module: sorted(d for d in deps if d == "shared.runtime" or d.startswith("shared.runtime."))
                 for module, deps in graph(TREE, "shared").items() if module.startswith("shared.stages")}
    assert {m: d for m, d in offenders.items() if d} == {}


def test_no_function_in_shared_is_longer_than_60_lines():
    """Counted from `def` to its last line: a longer one holds more than one step to name."""
    long = []
    for path in sorted(p for p in TREE.paths if p.startswith("shared/") and p.endswith(".py")):
        for node in ast.walk(ast.parse(TREE.read(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60:
                long.append(f"{path}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert long == []


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_facts_defined_once():
    sources = {path: TREE.read(path).decode() for path in TREE.paths
               if path.endswith(".py") and path.startswith(("shared/", "closet_pipeline/", "functions/"))}

    def defining(pattern: str) -> list[str]:
        return sorted(path for path, text in sources.items() if re.search(pattern, text, re.M))

    # the stage order: topology.json, read through shared.topology
    assert defining(r'\(\s*"ingest",\s*"remove_background",\s*"segment"') == []
    # the id pattern
    assert defining(r"A-Za-z0-9_-\]\{1,64\}") == ["shared/layout.py"]
    # signing identity, GCS client set-up, the tools check, dev key generation
    assert defining(r"^def signing_identity\b|^def _signing_identity\b") == ["shared/adapters/blobstore/gcs.py"]
    assert defining(r"AnonymousCredentials\(\)") == ["shared/adapters/blobstore/gcs.py"] or all(
        path.startswith(("closet_pipeline/", "tests/")) for path in defining(r"AnonymousCredentials\(\)")
        if path != "shared/adapters/blobstore/gcs.py")
    assert defining(r"^def missing_tools\b") == ["closet_pipeline/dev/tools.py"]
    assert defining(r"^def generate_service_account_info\b") == ["closet_pipeline/dev/keys.py"]
    # the warm-up attribute is read in one place
    assert defining(r'WARMUP_ATTRIBUTE\)|\.get\("warmup"\)') == ["shared/runtime/events.py"]
    # issue 19: error codes, photo formats, upload metadata keys, link lifetimes, the list of functions
    assert defining(r'^\s+code = "[A-Z_]+"') == ["shared/errors.py"]
    # issue 21's HTTP `errorCode`s are codes too: defined beside the pipeline's, nowhere else
    http_codes = "|".join(code.value for code in HttpErrorCode)
    assert defining(rf'^class \w*ErrorCode\b|"({http_codes})"') == ["shared/errors.py"]
    assert defining(r'"image/(heic|heif|avif)"') == ["shared/formats.py"]  # the accepted types: one list
    assert defining(r'"x-goog-meta-|"image-type"') == ["shared/layout.py"]
    assert defining(r"minutes=15|timedelta\(seconds=900|\b3600\b.*ttl|ttl.*\b3600\b") == []
    assert defining(r'\["failureHandler"\]') == ["shared/topology.py"]


def test_the_dev_topology_is_split_by_concern():
    """One module per local stand-in (closet_pipeline/dev/): no class there is longer than 250 lines."""
    long = {}
    for path in sorted((REPO / "closet_pipeline" / "dev").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > 250:
                long[f"{path.name}:{node.name}"] = node.end_lineno - node.lineno + 1
    assert long == {}
