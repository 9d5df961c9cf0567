"""Ingest's peak memory on the worst input it accepts: a 50 MP (7071 x 7071) 16-bit RGBA PNG of about
600 KB, which passes every byte and pixel limit yet decodes to hundreds of MB.

    python -m closet_pipeline.bench.ingest_memory [--side 7071]

Runs normalise() in a fresh process (the interpreter, numpy, Pillow and pillow-heif loaded, as in
the ingest function) and reports its peak RSS against the memory topology.json deploys ingest with.
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

from shared.topology import TOPOLOGY_FILE

# VmHWM, not ru_maxrss: the latter survives exec, so a child of a big process (pytest with IS-Net
# loaded) would report its parent's size.
PROBE = """
import json, sys
from shared.config import Settings
from shared.media.image_io import normalise
settings = Settings()
data = open(sys.argv[1], "rb").read()
image = normalise(data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_pixels,
                  min_side=settings.min_side, max_side=settings.working_max_side).image
width, height = image.size
peak_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"peak_mib": peak_kib / 1024, "size": image.size,
                  "centre": image.getpixel((width // 2, height // 2)), "corner": image.getpixel((2, 2))}))
"""


def worst_png(path: Path, side: int) -> Path:
    """A side x side 16-bit RGBA PNG: a garment-like patch on a transparent field, written row by row."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    empty = b"\x00" + bytes(side * 8)
    patch = bytearray(empty)
    for x in range(side // 4, 3 * side // 4):
        patch[1 + 8 * x: 9 + 8 * x] = b"\xc0\x00\x20\x00\x20\x00\xff\xff"  # opaque red
    compressor, parts = zlib.compressobj(6), []
    for y in range(side):
        parts.append(compressor.compress(bytes(patch) if side // 4 <= y < 3 * side // 4 else empty))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", side, side, 16, 6, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))
    return path


def measure(side: int = 7071) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        png = worst_png(Path(scratch) / "worst.png", side)
        done = subprocess.run([sys.executable, "-c", PROBE, str(png)], capture_output=True, text=True, check=True)
        result = json.loads(done.stdout)
        result["file_bytes"] = png.stat().st_size
    stage = next(s for s in json.loads(TOPOLOGY_FILE.read_text())["stages"] if s["name"] == "ingest")
    result["deployed_mib"] = int(stage["memory"].removesuffix("Mi")) if stage["memory"].endswith("Mi") \
        else int(stage["memory"].removesuffix("Gi")) * 1024
    result["side"] = side
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m closet_pipeline.bench.ingest_memory", description=__doc__)
    parser.add_argument("--side", type=int, default=7071)
    result = measure(parser.parse_args(argv).side)
    print(f"{result['side']}x{result['side']} 16-bit RGBA PNG, {result['file_bytes']:,} bytes: ingest peak RSS "
          f"{result['peak_mib']:.0f} MiB of {result['deployed_mib']} MiB deployed")
    return 0 if result["peak_mib"] < result["deployed_mib"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
