"""The peer: rembg's `remove()` with the same IS-Net file, on the same photos, as a rembg user does it.
(Same weights, not the same pre-processing: rembg's dis_custom divides by the image's maximum and
subtracts ImageNet means; we use RGB/255 − 0.5, the normalisation IMG.LY ships these weights with.)

rembg is an optional benchmark dependency (`pip install "rembg[cpu]"`); `ensure_rembg` installs it
into this interpreter's environment when it is missing and allowed to. The measurement runs in a
fresh process (`python -m closet_pipeline.bench.peer`): rembg's first import compiles numba code and reads
U2NET_HOME, and a custom model must lie inside U2NET_HOME, so our cached model is linked into a
temporary one and loaded as `new_session("dis_custom", model_path=...)`. Each photo: read the file,
`remove(bytes, session=session)` (EXIF orientation applied, mask at full resolution, PNG bytes
back), write the PNG. The first call is the cold sample; the rest are warm.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

PACKAGE = "rembg[cpu]"


def ensure_rembg(install: bool, log: Callable[[str], None] = print) -> str | None:
    """None when rembg can be imported here, else why the peer is not available."""
    if importlib.util.find_spec("rembg") is not None:
        return None
    if not install:
        return "rembg is not installed (and --no-install-peer was given)"
    log(f"peer: installing {PACKAGE} into {sys.prefix} (an optional benchmark dependency) ...")
    try:
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", PACKAGE], capture_output=True, text=True,
                              timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"pip install {PACKAGE} failed: {exc}"
    importlib.invalidate_caches()
    if done.returncode != 0 or importlib.util.find_spec("rembg") is None:
        return f"pip install {PACKAGE} failed: {(done.stderr or done.stdout).strip()[-300:]}"
    return None


def run_peer(model: Path, photos: list[Path], runs: int, timeout_s: float = 1800) -> dict:
    """Measure rembg in a fresh interpreter and return what it measured."""
    from closet_pipeline.bench.system import json_probe

    args = ["--model", str(model), "--runs", str(runs), *(str(p) for p in photos)]
    return json_probe("closet_pipeline.bench.peer", args, timeout_s, "rembg peer")


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def measure(model: Path, photos: list[Path], runs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="closet-bench-u2net-") as home:
        os.environ["U2NET_HOME"] = home
        linked = Path(home) / model.name
        linked.symlink_to(model.resolve())
        started = time.perf_counter()
        import pillow_heif
        from rembg import new_session, remove

        pillow_heif.register_heif_opener()  # what a rembg user with iPhone photos has to add
        import_ms = _ms(started)
        started = time.perf_counter()
        session = new_session("dis_custom", model_path=str(linked))
        session_ms = _ms(started)
        out_dir = Path(home) / "out"
        out_dir.mkdir()

        def one(photo: Path) -> dict:
            begin = time.perf_counter()
            data = photo.read_bytes()
            cutout = remove(data, session=session)
            (out_dir / f"{photo.stem}.png").write_bytes(cutout)
            return {"photo": photo.name, "ms": _ms(begin), "png_bytes": len(cutout)}

        cold = one(photos[0])
        warm = [one(photo) for _ in range(runs) for photo in photos]
        import rembg

        version = getattr(rembg, "__version__", None)
        if version is None:
            from importlib.metadata import version as dist_version

            version = dist_version("rembg")
    return {"version": version, "import_ms": import_ms, "session_ms": session_ms, "cold": cold, "warm": warm}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="rembg remove() on photos (used by closet_pipeline.bench.run)")
    parser.add_argument("photos", nargs="+", type=Path)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.model, args.photos, max(1, args.runs))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
