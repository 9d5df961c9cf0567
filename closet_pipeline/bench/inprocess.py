"""In-process measurements, each run in a fresh Python process so that "cold" is really cold.

A probe starts the pipeline (imports, LocalPipeline), optionally warms it up, processes the first
photo (the cold sample: the model loads on first use unless warmed up) and then every photo `runs`
times (the warm samples), with expand off and the cache off. It records each job's end to end and
per-stage times, the messages published between stages and the outputs' sizes, and its own peak
RSS. With `--extras` it also measures, in the same process:

- the floor: bare onnxruntime inference (`session.run` of the same session, nothing else) on the
  first photo's already-prepared 1x3x1024x1024 tensor, one sample after each warm job so both see
  the same load on the machine, and a bare Pillow decode of the first JPEG;
- ingest against a plain Pillow open, exif_transpose, resize to the working size, save as PNG;
- the old way's encoding (the full-resolution RGBA cut-out as PNG, base64 in a JSON message) against
  ours (the outputs as PNG or WebP, plus the messages);
- a cache hit (a second pipeline with the cache on: one miss, then hits).

The parent calls `run_probe`, which starts `python -m closet_pipeline.bench.inprocess` and reads its JSON.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import time
from pathlib import Path

LIMITS = dict(max_bytes=25_000_000, max_pixels=50_000_000, min_side=32, max_side=1200)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _job(pipeline, data: bytes, name: str, cloth_id: str) -> dict:
    started = time.perf_counter()
    document = pipeline.process_bytes(data, name, user_id="bench", cloth_id=cloth_id)
    elapsed = _ms(started)
    if not document.success:
        raise RuntimeError(f"{name}: {document.error_code} {document.error_message}")
    return {"photo": name, "e2e_ms": elapsed, "timings": dict(document.timings), "job_id": document.job_id,
            "cache_hit": document.cache_hit, "garments": len(document.all_segmented_items)}


def _messages(pipeline) -> list[dict]:
    """Every message the in-process bus carried: topic, size in bytes, job."""
    return [{"topic": topic, "bytes": len(data), "job_id": attributes.get("jobId", "")}
            for topic, data, attributes in list(pipeline.bus.published)]


def _outputs(store, job_id: str) -> dict[str, int]:
    """A job's delivered files (under results/) and their sizes."""
    return {key.rsplit(f"{job_id}/", 1)[-1]: len(store.read(key).data)
            for key in store.list("results/") if f"/{job_id}/" in key}


def _timed(fn, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(_ms(started))
    return samples


def probe(photos: list[Path], runs: int, warm_up: bool, extras: bool, extra_runs: int, cache_hits: int) -> dict:
    started = time.perf_counter()
    from closet_pipeline.adapters.memory import MemoryBlobStore
    from closet_pipeline.bench.system import peak_rss_mb
    from closet_pipeline.local_run import LocalPipeline
    from shared.config import Settings

    settings = Settings(cache_enabled=False, expand_policy="never", background_providers=("local",))
    store = MemoryBlobStore()
    pipeline = LocalPipeline(settings, store)
    result: dict = {"startup_ms": _ms(started), "warm_up": warm_up}
    if warm_up:
        started = time.perf_counter()
        pipeline.warm_up()
        result["warm_up_ms"] = _ms(started)
    data = {photo: photo.read_bytes() for photo in photos}
    result["cold"] = _job(pipeline, data[photos[0]], photos[0].name, "cold")
    from shared.stages import remove_background

    remover = remove_background.chain(pipeline.ctx).providers[0]
    if extras:  # the floor's input: the first photo's working image, prepared once
        from shared.media.image_io import normalise

        tensor = remover.prepare(normalise(data[photos[0]], **LIMITS).image)
    result["warm"], inference = [], []
    for r in range(runs):
        for i, photo in enumerate(photos):
            result["warm"].append(_job(pipeline, data[photo], photo.name, f"warm{r}x{i}"))
            if extras:  # interleaved with the jobs, so both see the same load on the machine
                inference += _timed(lambda: remover.infer(tensor), 1)
    while extras and len(inference) < extra_runs:
        inference += _timed(lambda: remover.infer(tensor), 1)
    result["peak_rss_mb"] = peak_rss_mb()
    result["messages"] = _messages(pipeline)
    last = (result["warm"] or [result["cold"]])[-1]
    result["outputs"] = {"job_id": last["job_id"], "photo": last["photo"], "files": _outputs(store, last["job_id"])}
    if extras:
        jpeg = next((p for p in photos if data[p][:2] == b"\xff\xd8"), photos[0])
        result["floor"] = {"inference_ms": inference, "jpeg_decode_ms": jpeg_decode(data[jpeg], extra_runs),
                           "jpeg_bytes": len(data[jpeg])}
        result["ingest_vs_plain"] = ingest_vs_plain(data[jpeg], extra_runs)
        result["encoding"] = old_way_vs_ours(data[jpeg], remover, store, last["job_id"], max(1, extra_runs // 3))
        pipeline.close()
        result["cache"] = cache_hit(data[photos[0]], photos[0].name, cache_hits)
    else:
        pipeline.close()
    return result


def jpeg_decode(jpeg: bytes, runs: int) -> list[float]:
    """The other floor: a bare full-resolution Pillow decode of the JPEG."""
    from PIL import Image

    def decode():
        with Image.open(io.BytesIO(jpeg)) as image:
            image.load()

    decode()  # first use: not timed
    return _timed(decode, runs)


def plain_ingest(data: bytes, max_side: int = 1200) -> bytes:
    """What a plain Pillow user writes: open, rotate upright, resize, save."""
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    scale = min(1.0, max_side / max(image.size))
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def our_ingest(data: bytes) -> bytes:
    """The ingest stage's work without storage: normalise, and the working PNG the cloud stage writes."""
    from shared.media.image_io import encode, normalise

    return encode(normalise(data, **LIMITS).image, "png", fast=True)


def ingest_vs_plain(jpeg: bytes, runs: int) -> dict:
    plain_ingest(jpeg), our_ingest(jpeg)  # imports and first-use costs, not timed
    plain, ours = [], []
    for _ in range(runs):  # interleaved, so both see the same background load
        plain += _timed(lambda: plain_ingest(jpeg), 1)
        ours += _timed(lambda: our_ingest(jpeg), 1)
    return {"plain_ms": plain, "ours_ms": ours}


def old_way_vs_ours(jpeg: bytes, remover, store, job_id: str, runs: int) -> dict:
    """The app worker's encoding of a job against ours, in milliseconds and bytes."""
    from PIL import Image, ImageOps

    from shared.media.image_io import decode, encode, normalise, thumbnail_webp

    # The old way: the cut-out at the photo's full resolution, PNG with Pillow's defaults, base64 in JSON.
    full = ImageOps.exif_transpose(Image.open(io.BytesIO(jpeg))).convert("RGBA")
    full.putalpha(remover.mask(normalise(jpeg, **LIMITS).image).resize(full.size, Image.Resampling.LANCZOS))

    def old() -> int:
        out = io.BytesIO()
        full.save(out, "PNG")
        return len(json.dumps({"image": base64.b64encode(out.getvalue()).decode("ascii")}).encode())

    old_bytes = old()
    old_ms = _timed(old, runs)

    # Ours: the job's delivered images, encoded as deliver encodes them (PNG or WebP, WebP thumbnails).
    files = {key.rsplit(f"{job_id}/", 1)[-1]: key for key in store.list("results/") if f"/{job_id}/" in key}
    images = [decode(store.read(key).data) for name, key in sorted(files.items())
              if name.endswith(".png") and ".thumb." not in name]
    ours = {}
    for fmt in ("png", "webp"):
        sizes: list[int] = []

        def encode_all() -> None:
            sizes.clear()
            for index, image in enumerate(images):
                sizes.append(len(encode(image, fmt)))
                if index > 0:  # every crop gets a thumbnail; the cut-out (first) does not
                    sizes.append(len(thumbnail_webp(image, 256)))

        samples = _timed(encode_all, runs)
        ours[fmt] = {"ms": samples, "bytes": sum(sizes), "files": len(sizes)}
    return {"old_ms": old_ms, "old_bytes": old_bytes, "full_size": list(full.size), "ours": ours,
            "working_size": list(images[0].size) if images else None}


def cache_hit(data: bytes, name: str, hits: int) -> dict:
    """A pipeline with the cache on: the first upload is processed, the repeats are served."""
    from closet_pipeline.adapters.memory import MemoryBlobStore
    from closet_pipeline.local_run import LocalPipeline
    from shared.config import Settings

    settings = Settings(cache_enabled=True, expand_policy="never", background_providers=("local",))
    pipeline = LocalPipeline(settings, MemoryBlobStore())
    try:
        first = _job(pipeline, data, name, "cachemiss")
        repeats = [_job(pipeline, data, name, f"cachehit{i}") for i in range(hits)]
    finally:
        pipeline.close()
    if not all(r["cache_hit"] for r in repeats):
        raise RuntimeError("a repeat upload was not served from the cache")
    return {"miss_ms": first["e2e_ms"], "hit_ms": [r["e2e_ms"] for r in repeats]}


# -- the parent side ---------------------------------------------------------------------------------
def run_probe(photos: list[Path], *, runs: int, warm_up: bool = False, extras: bool = False, extra_runs: int = 5,
              cache_hits: int = 3, timeout_s: float = 1800) -> dict:
    """Run a probe in a fresh interpreter and return what it measured."""
    from closet_pipeline.bench.system import json_probe

    args = ["--runs", str(runs), "--extra-runs", str(extra_runs), "--cache-hits", str(cache_hits)]
    args += ["--warm-up"] if warm_up else []
    args += ["--extras"] if extras else []
    return json_probe("closet_pipeline.bench.inprocess", args + [str(p) for p in photos], timeout_s, "in-process probe")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one in-process probe (used by closet_pipeline.bench.run)")
    parser.add_argument("photos", nargs="+", type=Path)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--warm-up", action="store_true")
    parser.add_argument("--extras", action="store_true")
    parser.add_argument("--extra-runs", type=int, default=5)
    parser.add_argument("--cache-hits", type=int, default=3)
    args = parser.parse_args(argv)
    result = probe(args.photos, args.runs, args.warm_up, args.extras, max(1, args.extra_runs), max(1, args.cache_hits))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
