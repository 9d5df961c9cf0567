"""The folders show the architecture: `shared/` (what functions run) never imports the tooling in
`closet_pipeline/`, no package has an import cycle, and each fact the issue found copied is defined once."""

from __future__ import annotations

import re
from pathlib import Path

from closet_pipeline.imports import Tree, cycles, graph
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
