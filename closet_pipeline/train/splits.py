"""One split rule for every dataset, so training, evaluation and benchmarks agree on what is unseen.

A photo's part is decided by the sha256 of its file stem, not by listing order: adding photos never
moves an existing one to another part.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

Part = Literal["train", "validation", "test"]
DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def part_of(stem: str) -> Part:
    """10 % test, 10 % validation, 80 % train."""
    bucket = int(hashlib.sha256(stem.encode()).hexdigest(), 16) % 10
    return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


def photos(folder: Path, part: Part) -> list[Path]:
    """The photos of one part, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"}
                  and part_of(p.stem) == part)
