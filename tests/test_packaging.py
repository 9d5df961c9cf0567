"""`make package` (shared.packaging.build_all): one deterministic zip per function, deployable as is.

Every function shared/topology.json names gets a zip with its main.py, its requirements.txt, the
shared/ library and (remove_background) the model. Two builds are byte-identical, whatever the
files' timestamps or stray caches, so Terraform's md5-named objects redeploy only what changed.
Each zip is then unpacked and its `main` imported in a fresh virtual environment made from that
zip's requirements.txt alone (one per distinct requirement set), with cloud access blocked: a
missing dependency, or an import that loads the model or calls a service, fails here rather than
on deploy. The real model is 44 MB; these tests use a small fake file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shared import packaging

REPO = Path(__file__).resolve().parent.parent
TOPOLOGY = json.loads((REPO / "shared" / "topology.json").read_text(encoding="utf-8"))
FUNCTIONS = [
    *(stage["name"] for stage in TOPOLOGY["stages"]),
    TOPOLOGY["failureHandler"]["name"],
    *(function["name"] for function in TOPOLOGY["httpFunctions"]),
]
FAKE_MODEL = b"not an ONNX model: importing a function must not load it\n" * 100
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()  # as Terraform's filemd5() computes it


def shared_files(root: Path) -> set[str]:
    """What the zip must carry of shared/: every file but caches and hidden files."""
    found = set()
    for path in (root / "shared").rglob("*"):
        relative = path.relative_to(root)
        cached = "__pycache__" in relative.parts or path.suffix in {".pyc", ".pyo"}
        hidden = any(part.startswith(".") for part in relative.parts)
        if path.is_file() and not cached and not hidden:
            found.add(relative.as_posix())
    return found


@pytest.fixture(scope="module")
def fake_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "isnet-general-use-small.onnx"
    path.write_bytes(FAKE_MODEL)
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, fake_model: Path) -> dict[str, Path]:
    """`make package` into a temporary folder: fails while a function's folder is missing."""
    return packaging.build_all(tmp_path_factory.mktemp("build") / "functions", fake_model)


# -- what gets built ----------------------------------------------------------------------------


def test_functions_come_from_the_topology():
    assert packaging.function_names() == FUNCTIONS
    assert {"ingest", "remove_background", "segment", "expand", "deliver", "dead_letter", "upload_url"} <= set(
        FUNCTIONS
    )


def test_every_function_is_packaged(built: dict[str, Path]):
    assert list(built) == FUNCTIONS
    expected_shared = shared_files(REPO)
    assert "shared/topology.json" in expected_shared and "shared/config.py" in expected_shared
    for name, path in built.items():
        assert path.name == f"{name}.zip" and path.is_file()
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            assert archive.testzip() is None
            for required in ("main.py", "requirements.txt"):
                assert archive.read(required) == (REPO / "functions" / name / required).read_bytes()
            assert {n for n in names if n.startswith("shared/")} == expected_shared, f"{name}: shared/ incomplete"
            assert archive.read("shared/topology.json") == (REPO / "shared" / "topology.json").read_bytes()
            assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))], name
            if name == packaging.MODEL_FUNCTION:
                assert archive.read("models/isnet-general-use-small.onnx") == FAKE_MODEL
            else:
                assert not [n for n in names if n.startswith("models/")], f"{name} must not carry the model"


def test_zip_entries_are_normalised(built: dict[str, Path]):
    for name, path in built.items():
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            assert [i.filename for i in infos] == sorted(i.filename for i in infos), f"{name}: entries not sorted"
            for info in infos:
                assert info.date_time == FIXED_DATE_TIME, f"{name}: {info.filename} keeps its timestamp"
                assert info.external_attr >> 16 == 0o100644, f"{name}: {info.filename} mode"
                assert info.create_system == 3


def test_model_path_in_the_zip_is_what_terraform_configures():
    assert packaging.MODEL_ARCNAME == "models/isnet-general-use-small.onnx"
    main_tf = (REPO / "terraform" / "main.tf").read_text(encoding="utf-8")
    assert f'model_path_in_zip = "{packaging.MODEL_ARCNAME}"' in main_tf


# -- determinism --------------------------------------------------------------------------------


def test_two_builds_are_identical(built: dict[str, Path], fake_model: Path, tmp_path: Path):
    again = packaging.build_all(tmp_path / "again", fake_model)
    assert {n: md5(p) for n, p in again.items()} == {n: md5(p) for n, p in built.items()}


def test_timestamps_and_caches_do_not_change_the_zip(built: dict[str, Path], fake_model: Path, tmp_path: Path):
    # A copy of the sources with other modification times, bytecode caches and editor droppings.
    root = tmp_path / "repo"
    shutil.copytree(REPO / "shared", root / "shared", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(REPO / "functions", root / "functions", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for path in [*root.rglob("*.py"), *root.rglob("*.txt"), *root.rglob("*.json")]:
        os.utime(path, (1_700_000_000, 1_700_000_000))
    for folder in (root / "shared", root / "shared" / "providers", root / "functions" / FUNCTIONS[0]):
        (folder / "__pycache__").mkdir(exist_ok=True)
        (folder / "__pycache__" / "junk.cpython-311.pyc").write_bytes(b"\x00junk")
        (folder / ".DS_Store").write_bytes(b"junk")
    (root / "functions" / FUNCTIONS[0] / "stray.pyc").write_bytes(b"junk")

    rebuilt = packaging.build_all(tmp_path / "out", fake_model, root=root)
    assert {n: md5(p) for n, p in rebuilt.items()} == {n: md5(p) for n, p in built.items()}

    # ...while a change of content does change that function's zip, and only the zips carrying it.
    (root / "functions" / FUNCTIONS[0] / "main.py").write_text("# changed\n", encoding="utf-8")
    changed = packaging.build_all(tmp_path / "changed", fake_model, root=root, names=[FUNCTIONS[0], FUNCTIONS[-1]])
    assert md5(changed[FUNCTIONS[0]]) != md5(built[FUNCTIONS[0]])
    assert md5(changed[FUNCTIONS[-1]]) == md5(built[FUNCTIONS[-1]])


# -- the model ----------------------------------------------------------------------------------


def test_missing_model_fails_remove_background_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CLOSET_MODEL_DIR", str(tmp_path / "empty-model-dir"))
    out = tmp_path / "out"
    with pytest.raises(packaging.PackagingError, match="remove_background") as failure:
        packaging.build_all(out, None)
    assert "--model" in str(failure.value)
    assert sorted(p.stem for p in out.glob("*.zip")) == sorted(n for n in FUNCTIONS if n != packaging.MODEL_FUNCTION)
    with pytest.raises(packaging.PackagingError, match="does not exist"):
        packaging.build_all(out, tmp_path / "nope.onnx", names=[packaging.MODEL_FUNCTION])


def test_cached_model_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    (model_dir / packaging.MODEL_FILE_NAME).write_bytes(b"cached weights")
    monkeypatch.setenv("CLOSET_MODEL_DIR", str(model_dir))
    built = packaging.build_all(tmp_path / "out", None, names=[packaging.MODEL_FUNCTION])
    with zipfile.ZipFile(built[packaging.MODEL_FUNCTION]) as archive:
        assert archive.read(packaging.MODEL_ARCNAME) == b"cached weights"


def test_unknown_function_is_refused(tmp_path: Path, fake_model: Path):
    with pytest.raises(packaging.PackagingError, match="not functions of shared/topology.json"):
        packaging.build_all(tmp_path, fake_model, names=["no_such_function"])


def test_command_line_builds_the_same_zips(built: dict[str, Path], fake_model: Path, tmp_path: Path):
    out = tmp_path / "cli"
    done = subprocess.run(
        [sys.executable, "-m", "shared.packaging", "--out", str(out), "--model", str(fake_model)],
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
        [sys.executable, "-m", "shared.packaging", "--out", str(out), "--model", str(tmp_path / "missing.onnx")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert failed.returncode == 1 and "remove_background" in failed.stderr


# -- each zip imports in a fresh environment made from its requirements.txt ---------------------


def requirement_set(text: str) -> tuple[str, ...]:
    """The requirements, order and comments aside: zips with the same set share one environment."""
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return tuple(sorted(line for line in lines if line))


def _make_venv(folder: Path, requirements: Path) -> Path:
    """`python -m venv` + `pip install -r requirements.txt` (pip driven from outside: no pip in the venv)."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, capture_output=True, timeout=300
    )
    python = folder / "bin" / "python"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-compile",
            "-r",
            str(requirements),
        ],
        capture_output=True,
        text=True,
        timeout=540,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pip install -r {requirements} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return python


@pytest.fixture(scope="module")
def unpacked(built: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("unpacked")
    folders = {}
    for name, path in built.items():
        with zipfile.ZipFile(path) as archive:
            archive.extractall(root / name)
        folders[name] = root / name
    return folders


@pytest.fixture(scope="module")
def environments(unpacked: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Function name -> the python of a fresh venv with just its requirements (one venv per set)."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for name, folder in unpacked.items():
        groups.setdefault(requirement_set((folder / "requirements.txt").read_text(encoding="utf-8")), []).append(name)
    root = tmp_path_factory.mktemp("venvs")
    jobs = {}
    with ThreadPoolExecutor(max_workers=len(groups)) as pool:
        for index, names in enumerate(groups.values()):
            jobs[pool.submit(_make_venv, root / f"venv{index}", unpacked[names[0]] / "requirements.txt")] = names
        pythons = {}
        for job, names in jobs.items():
            python = job.result()
            pythons.update(dict.fromkeys(names, python))
    return pythons


IMPORT_CHECK = """
import sys
sys.path.insert(0, sys.argv[1])
import main
import shared
assert shared.__file__.startswith(sys.argv[1]), "shared/ must come from the zip, not " + shared.__file__
assert callable(getattr(main, "handle", None)), "main.handle is missing"
print("imported", main.__name__)
"""


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
        # As deployed (/workspace/models/...): the zip's own (fake) model -- loading it would fail.
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
def test_zip_imports_in_a_fresh_environment(
    name: str, unpacked: dict[str, Path], environments: dict[str, Path], tmp_path: Path
):
    folder = unpacked[name]
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run(
        [str(environments[name]), "-I", "-c", IMPORT_CHECK, str(folder)],
        cwd=folder,
        env=_offline_env(folder, home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{name}: importing main failed:\n{done.stdout}\n{done.stderr[-4000:]}"
    assert "imported main" in done.stdout
