"""Stage 3, segment: the cut-out in, one crop per garment out (one message each, so garments are
expanded in parallel). The job's image type picks the segmenter's path; when the upload did not say,
the segmenter decides and the result records what it used."""

from __future__ import annotations

import time

from shared.documents import ProgressStep
from shared.errors import NoGarmentFound
from shared.layout import work_key
from shared.messages import CutoutDone, GarmentFound
from shared.providers.segmentation import Segmenter, build_segmenter
from shared.stages.context import Outcome, StageContext
from shared.stages.progress import progress

accepts, emits = CutoutDone, GarmentFound


def segmenter(ctx: StageContext) -> Segmenter:
    return ctx.once("segmenter", lambda: build_segmenter(ctx.settings))


def run(message: CutoutDone, ctx: StageContext) -> Outcome:
    started = time.perf_counter()
    job = message.job
    cutout = ctx.images.get(message.cutout)
    segmentation = segmenter(ctx).segment_photo(cutout, job.image_type)
    garments = segmentation.garments
    if not garments:
        raise NoGarmentFound()
    timings = {**message.timings, "segment": 0}
    providers = {**message.providers, "segment": segmenter(ctx).name}
    found = []
    for index, garment in enumerate(garments):
        crop_key = work_key(job.job_id, f"items/{index}.png")
        ctx.images.put(crop_key, garment.crop)
        # The model's category; the user's pick is applied when the result is handed out (deliver).
        category = garment.category
        found.append(dict(
            cache_key=message.cache_key, cutout=message.cutout, item_index=index, item_count=len(garments),
            crop=crop_key, label=garment.label, category=category, confidence=garment.confidence,
            image_type=segmentation.image_type, area_pixels=garment.area_pixels,
            bbox=garment.bbox, touches_border=garment.touches_border,
        ))
    timings["segment"] = round((time.perf_counter() - started) * 1000)
    messages = tuple(
        GarmentFound(job=job, attempt=message.attempt, timings=timings, providers=providers, **fields) for fields in found
    )
    return Outcome(next=messages, progress=(progress(job, ProgressStep.ANALYZED),))


def warm_up(ctx: StageContext) -> None:
    segmenter(ctx).warm_up()
