"""The expand policy on real photos: for how many garments `auto` would call the generative model,
against `always` (every garment). Each photo is ingested, cut out by the local IS-Net model and
segmented as the pipeline does it; `shared.stages.expand.needs_generation` decides per garment. No
generative model is called."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Callable


def policy_share(photos: list[Path], settings, log: Callable[[str], None] = print) -> dict:
    from shared.config import ExpandPolicy
    from shared.errors import PipelineError
    from shared.media import matting
    from shared.media.image_io import normalise
    from shared.messages import GarmentFound, Job
    from shared.providers.background import build_background_chain
    from shared.providers.segmentation import build_segmenter
    from shared.stages.expand import needs_generation

    chain, segmenter = build_background_chain(settings), build_segmenter(settings)
    job = Job(job_id="bench", cloth_id="bench", user_id="bench", upload="uploads/bench/bench/photo.jpg")
    garments = auto = always = photos_with_call = 0
    reasons: Counter[str] = Counter()
    skipped: list[str] = []
    started = time.perf_counter()
    for index, photo in enumerate(photos):
        try:
            image = normalise(photo.read_bytes(), max_bytes=settings.max_upload_bytes, max_pixels=settings.max_pixels,
                              min_side=settings.min_side, max_side=settings.working_max_side).image
            cutout = matting.cutout(image, chain.mask(image).mask)  # as remove_background does
        except PipelineError as exc:
            skipped.append(f"{photo.name}: {exc.code}")
            continue
        found = segmenter.segment(cutout)
        calls = 0
        for number, garment in enumerate(found):
            message = GarmentFound(job=job, cache_key="bench", cutout="c", item_index=number, item_count=len(found),
                                   crop="c", label=garment.label, category=garment.category,
                                   area_pixels=garment.area_pixels, bbox=garment.bbox,
                                   touches_border=garment.touches_border)
            wanted, reason = needs_generation(message, ExpandPolicy.AUTO, settings.expand_small_side)
            always += needs_generation(message, ExpandPolicy.ALWAYS, settings.expand_small_side)[0]
            garments += 1
            if wanted:
                calls += 1
                reasons[reason] += 1
        auto += calls
        photos_with_call += calls > 0
        if not found:
            skipped.append(f"{photo.name}: no garment found")
        if (index + 1) % 10 == 0:
            log(f"expand policy: {index + 1}/{len(photos)} photos")
    return {"photos": len(photos), "garments": garments, "auto": auto, "always": always,
            "photos_with_call": photos_with_call, "reasons": dict(reasons), "skipped": skipped,
            "elapsed_ms": (time.perf_counter() - started) * 1000}
