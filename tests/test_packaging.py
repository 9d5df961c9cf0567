"""`make package` (closet_pipeline.packaging.build_all): one deterministic zip per function, deployable as is.

Every function shared/topology.json declares gets a zip with its main.py, its requirements.txt, the
modules of shared/ that it reaches and (remove_background) the optimised model, all read from git's
tree. The builds run in a throwaway git repository holding a copy of this checkout, so the tests can
commit edits and watch which zips change. Each zip is then unpacked and every module it carries
imported in an environment made from that zip's requirements.txt alone (closet_pipeline/function_envs.py,
the same environments the local topology serves the functions from), with cloud access blocked: a
missing module or dependency, or an import that loads the model or calls a service, fails here
rather than on deploy; and its requirements are audited: every pin is something it loads. The real
model is 44 MB; these tests use a tiny ONNX graph (one Relu), which onnxruntime can still optimise
as packaging does for the real one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper

from closet_pipeline import function_envs, packaging
from closet_pipeline.imports import Tree
from shared.topology import declaration

REPO = Path(__file__).resolve().parent.parent
FUNCTIONS = declaration().names  # the one list of functions (shared/topology.json)


def tiny_model() -> bytes:
    """A real ONNX graph (input -> Relu -> output), a stand-in for the 44 MB IS-Net file."""
    shape = [1, 3, 8, 8]
    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["output"])], "tiny",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return model.SerializeToString(deterministic=True)


FAKE_MODEL = tiny_model()
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()  # as Terraform's filemd5() computes it


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", message)


def copy_checkout(target: Path) -> Path:
    """This checkout's tracked files as they are on disk, committed in a new repository."""
    for relative in git(REPO, "ls-files", "-z").split("\0"):
        source = REPO / relative
        if relative and source.is_file():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / relative)
    git(target, "init", "-q")
    commit_all(target, "copy")
    return target


def names_in(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as archive:
        return set(archive.namelist())


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_checkout(tmp_path_factory.mktemp("repo"))


@pytest.fixture(scope="module")
def fake_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "isnet-general-use-small.onnx"
    path.write_bytes(FAKE_MODEL)
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, fake_model: Path, repo: Path) -> dict[str, Path]:
    """`make package` into a temporary folder: fails while a function's folder is missing."""
    return packaging.build_all(tmp_path_factory.mktemp("build") / "functions", fake_model, root=repo)


# -- what gets built ----------------------------------------------------------------------------


def test_functions_come_from_the_declaration(repo: Path, fake_model: Path, tmp_path: Path):
    """Packaging reads the list from the tree it packages: a function added to topology.json gets a
    zip with no other edit (here a copy of status, declared as `status_copy`)."""
    assert packaging.function_names(Tree.from_worktree(REPO)) == FUNCTIONS
    assert {"ingest", "remove_background", "segment", "expand", "deliver", "dead_letter", "upload_url",
            "status", "webhook"} == set(FUNCTIONS)
    added = copy_checkout(tmp_path / "repo")
    shutil.copytree(added / "functions" / "status", added / "functions" / "status_copy")
    raw = declaration().raw
    raw = {**raw, "httpFunctions": [*raw["httpFunctions"], {**raw["httpFunctions"][-1], "name": "status_copy"}]}
    (added / "shared" / "topology.json").write_text(__import__("json").dumps(raw, indent=2))
    commit_all(added, "a new function")
    built = packaging.build_all(tmp_path / "out", fake_model, root=added, names=None)
    assert set(built) == {*FUNCTIONS, "status_copy"}
    assert "shared/http/status.py" in names_in(built["status_copy"])


def test_every_function_is_packaged(built: dict[str, Path], repo: Path):
    assert list(built) == FUNCTIONS
    for name, path in built.items():
        assert path.name == f"{name}.zip" and path.is_file()
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            assert archive.testzip() is None
            for required in ("main.py", "requirements.txt"):
                assert archive.read(required) == (repo / "functions" / name / required).read_bytes()
            assert archive.read("shared/topology.json") == (repo / "shared" / "topology.json").read_bytes()
            assert {"shared/__init__.py", "shared/config.py", "shared/errors.py"} <= set(names), name
            assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))], name
            assert not [n for n in names if n.startswith("closet_pipeline/")], f"{name} carries tooling"
            if name == packaging.MODEL_FUNCTION:  # the optimised graph only: the raw one is never loaded
                assert [n for n in names if n.startswith("models/")] == [packaging.MODEL_ARCNAME]
            else:
                assert not [n for n in names if n.startswith("models/")], f"{name} must not carry the model"


def test_each_zip_carries_only_what_its_function_reaches(built: dict[str, Path]):
    ingest, background = names_in(built["ingest"]), names_in(built["remove_background"])
    upload_url = names_in(built["upload_url"])
    assert "shared/stages/ingest.py" in ingest and "shared/stages/remove_background.py" not in ingest
    assert not [n for n in ingest if n.startswith("shared/providers/")], "ingest runs no provider"
    assert {"shared/stages/remove_background.py", "shared/providers/background/local_isnet.py",
            "shared/media/model_weights.py"} <= background
    assert not {"shared/stages/ingest.py", "shared/stages/expand.py", "shared/providers/generation/base.py"} & background
    assert not [n for n in upload_url if n.startswith(("shared/stages/", "shared/runtime/"))]
    # a provider named in a registry string ("module:Class") is reached too
    assert "shared/providers/generation/gemini.py" in names_in(built["expand"])
    # segment runs no background provider; the failure handler and the webhook handle no image
    assert not [n for n in names_in(built["segment"]) if n.startswith("shared/providers/background/")]
    for name in ("dead_letter", "webhook"):
        carried = names_in(built[name])
        assert not {"shared/media/image_io.py", "shared/stages/images.py"} & carried, name
        with zipfile.ZipFile(built[name]) as archive:
            pins = archive.read("requirements.txt").decode().lower()
        assert "pillow" not in pins and "numpy" not in pins, name


def test_zip_entries_are_normalised(built: dict[str, Path]):
    for name, path in built.items():
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            assert [i.filename for i in infos] == sorted(i.filename for i in infos), f"{name}: entries not sorted"
            for info in infos:
                assert info.date_time == FIXED_DATE_TIME, f"{name}: {info.filename} keeps its timestamp"
                assert info.external_attr >> 16 == 0o100644, f"{name}: {info.filename} mode"
                assert info.create_system == 3


def test_the_zip_carries_the_optimised_graph_and_it_computes_the_same(built: dict[str, Path]):
    """remove_background's zip carries onnxruntime's optimised graph alone (CLOSET_MODEL_PATH names
    it), and it computes what the model computes."""
    with zipfile.ZipFile(built[packaging.MODEL_FUNCTION]) as archive:
        optimised = archive.read(packaging.MODEL_ARCNAME)
    assert optimised != FAKE_MODEL and onnx.load_from_string(optimised).graph.node
    tensor = np.linspace(-1, 1, 3 * 8 * 8, dtype=np.float32).reshape(1, 3, 8, 8)
    outputs = [onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"]).run(None, {"input": tensor})[0]
               for graph in (FAKE_MODEL, optimised)]
    assert np.array_equal(outputs[0], outputs[1]) and outputs[0].min() == 0.0


def test_a_model_onnxruntime_cannot_read_is_refused(tmp_path: Path, repo: Path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an ONNX model\n" * 10)
    with pytest.raises(packaging.PackagingError, match="cannot optimise"):
        packaging.build_all(tmp_path / "out", broken, names=[packaging.MODEL_FUNCTION], root=repo)


def test_model_path_in_the_zip_is_what_terraform_configures():
    main_tf = (REPO / "terraform" / "main.tf").read_text(encoding="utf-8")
    assert f'model_path_in_zip = "{packaging.MODEL_ARCNAME}"' in main_tf


# -- determinism --------------------------------------------------------------------------------


def test_two_builds_are_identical(built: dict[str, Path], fake_model: Path, repo: Path, tmp_path: Path):
    again = packaging.build_all(tmp_path / "again", fake_model, root=repo)
    assert {n: md5(p) for n, p in again.items()} == {n: md5(p) for n, p in built.items()}


def test_only_committed_files_ship(built: dict[str, Path], fake_model: Path, repo: Path, tmp_path: Path):
    (repo / "shared" / "untracked_secret.py").write_text("KEY = 'x'\n")
    (repo / "functions" / "ingest" / "main.py").write_text("# uncommitted edit\n")
    try:
        rebuilt = packaging.build_all(tmp_path / "out", fake_model, root=repo)
        assert {n: md5(p) for n, p in rebuilt.items()} == {n: md5(p) for n, p in built.items()}
    finally:
        git(repo, "checkout", "--", "functions/ingest/main.py")
        (repo / "shared" / "untracked_secret.py").unlink()


def test_zips_change_only_when_what_they_run_changes(built: dict[str, Path], fake_model: Path, tmp_path: Path):
    repo = copy_checkout(tmp_path / "repo")  # this test commits: its own copy
    before = {n: md5(p) for n, p in built.items()}
    # A benchmark edit changes no zip.
    with (repo / "closet_pipeline" / "bench" / "report.py").open("a") as handle:
        handle.write("# a benchmark edit\n")
    commit_all(repo, "bench")
    assert {n: md5(p) for n, p in packaging.build_all(tmp_path / "b", fake_model, root=repo).items()} == before
    # An edit of expand's stage redeploys expand only.
    with (repo / "shared" / "stages" / "expand.py").open("a") as handle:
        handle.write("# an expand edit\n")
    commit_all(repo, "expand")
    after = {n: md5(p) for n, p in packaging.build_all(tmp_path / "e", fake_model, root=repo).items()}
    assert [n for n in FUNCTIONS if after[n] != before[n]] == ["expand"]


# -- the model ----------------------------------------------------------------------------------


def test_missing_model_fails_remove_background_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CLOSET_MODEL_DIR", str(tmp_path / "empty-model-dir"))
    out = tmp_path / "out"
    with pytest.raises(packaging.PackagingError, match="remove_background") as failure:
        packaging.build_all(out, None)  # this checkout's HEAD
    assert "--model" in str(failure.value)
    assert sorted(p.stem for p in out.glob("*.zip")) == sorted(n for n in FUNCTIONS if n != packaging.MODEL_FUNCTION)
    with pytest.raises(packaging.PackagingError, match="does not exist"):
        packaging.build_all(out, tmp_path / "nope.onnx", names=[packaging.MODEL_FUNCTION])


def test_cached_model_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    monkeypatch.setenv("CLOSET_MODEL_DIR", str(model_dir))
    packaging.default_model_path().write_bytes(FAKE_MODEL)  # the graph of the configured variant and side
    built = packaging.build_all(tmp_path / "out", None, names=[packaging.MODEL_FUNCTION])
    assert built[packaging.MODEL_FUNCTION].stat().st_size > 0
    with zipfile.ZipFile(built[packaging.MODEL_FUNCTION]) as archive:
        assert archive.read(packaging.MODEL_ARCNAME) == packaging.optimised_graph(packaging.default_model_path())


def test_unknown_function_is_refused(tmp_path: Path, fake_model: Path):
    with pytest.raises(packaging.PackagingError, match="not functions of shared/topology.json"):
        packaging.build_all(tmp_path, fake_model, names=["no_such_function"])


def test_command_line_builds_the_same_zips(built: dict[str, Path], fake_model: Path, tmp_path: Path):
    out = tmp_path / "cli"
    done = subprocess.run(
        [sys.executable, "-m", "closet_pipeline.packaging", "--out", str(out), "--model", str(fake_model)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    for name, path in built.items():
        assert md5(out / f"{name}.zip") == md5(path)
        assert md5(path) in done.stdout
    failed = subprocess.run(
        [sys.executable, "-m", "closet_pipeline.packaging", "--out", str(out), "--model", str(tmp_path / "missing.onnx")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert failed.returncode == 1 and "remove_background" in failed.stderr


# -- each zip imports in an environment made from its requirements.txt alone ----------------------


@pytest.fixture(scope="module")
def unpacked(built: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("unpacked")
    return {name: function_envs.unpack(path, root / name) for name, path in built.items()}


@pytest.fixture(scope="module")
def environments(unpacked: dict[str, Path]) -> dict[str, Path]:
    """Function name -> its environment (uv, cached by the requirements' hash: one per set)."""
    return {name: function_envs.environment(folder / "requirements.txt") for name, folder in unpacked.items()}


def _offline_env(folder: Path, home: Path) -> dict[str, str]:
    """No credentials, no reachable service: every Google endpoint and proxy points at a closed port."""
    closed = "127.0.0.1:9"
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),  # an empty home: no cached model, no gcloud credentials
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "GOOGLE_CLOUD_PROJECT": "test-project",
        "CLOSET_PROJECT_ID": "test-project",
        # As deployed (/workspace/models/...): the zip's own (tiny) model -- loading it would fail.
        "CLOSET_MODEL_PATH": str(folder / packaging.MODEL_ARCNAME),
        "CLOSET_MODEL_DIR": str(home / "models"),
        "STORAGE_EMULATOR_HOST": f"http://{closed}",
        "PUBSUB_EMULATOR_HOST": closed,
        "GCE_METADATA_HOST": closed,
        "GCE_METADATA_IP": closed,
        "NO_GCE_CHECK": "True",
        "HTTP_PROXY": f"http://{closed}",
        "HTTPS_PROXY": f"http://{closed}",
        "http_proxy": f"http://{closed}",
        "https_proxy": f"http://{closed}",
        "HF_HUB_OFFLINE": "1",
    }


@pytest.mark.parametrize("name", FUNCTIONS)
def test_zip_imports_in_its_own_environment_and_pins_what_it_loads(
    name: str, unpacked: dict[str, Path], environments: dict[str, Path], tmp_path: Path
):
    folder = unpacked[name]
    home = tmp_path / "home"
    home.mkdir()
    done = function_envs.import_check(folder, environments[name], declaration().function(name).entry_point,
                                      _offline_env(folder, home))
    assert done.returncode == 0, f"{name}: importing main failed:\n{done.stdout}\n{done.stderr[-4000:]}"
    assert "imported" in done.stdout
    audit = function_envs.requirements_audit(folder, environments[name])
    assert audit["unused"] == [], f"{name} pins what it never loads: {audit['unused']}"
    assert audit["unpinned"] == [], f"{name} imports what it does not pin: {audit['unpinned']}"
    # onnx is imported only to derive a graph at fetch-model time (tooling), behind an ImportError
    assert set(audit["missing"]) <= {"onnx"}, f"{name} imports what its environment lacks: {audit['missing']}"


def test_the_audit_sees_an_unused_and_a_missing_pin(unpacked: dict[str, Path], tmp_path: Path):
    """The audit itself: webhook with numpy added and httpx removed."""
    folder = tmp_path / "webhook"
    shutil.copytree(unpacked["webhook"], folder)
    lines = [line for line in (folder / "requirements.txt").read_text().splitlines() if not line.startswith("httpx")]
    (folder / "requirements.txt").write_text("\n".join([*lines, "numpy==2.4.6"]) + "\n")
    audit = function_envs.requirements_audit(folder, function_envs.environment(folder / "requirements.txt"))
    assert audit["unused"] == ["numpy"] and audit["missing"] == ["httpx"]
