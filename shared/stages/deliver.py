"""Stage 5, deliver: joins a job's garments and, when the last one is in, returns the job's ending:
encoding the outputs, building the result document and keeping it in the cache. The runtime runs the
ending only for the delivery that wins the job's end, and writes and publishes the document where
every job ends (shared/runtime/job_end.py).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import copy_context
from functools import partial
from typing import Callable

from shared.adapters.blobstore.base import OUTPUT_MARKER
from shared.documents import ExpandedItem, ProgressStep, ResultDocument, SegmentedItem
from shared.layout import results_prefix
from shared.media.image_io import CONTENT_TYPES, encode, thumbnail_webp
from shared.messages import GarmentDone
from shared.stages import cache
from shared.stages.context import Outcome, StageContext
from shared.stages.garment_join import join_garment, joined_garments
from shared.stages.progress import progress

accepts, emits = GarmentDone, None

EXPAND_SHARE = 20  # the app's bar moves from 50 to 70 % while garments come in


def run(message: GarmentDone, ctx: StageContext) -> Outcome:
    job = message.job
    added, count = join_garment(ctx.store, job.job_id, message.item_index, message.model_dump_json())
    joined = progress(job, ProgressStep.EXPANDING, 50 + EXPAND_SHARE * count // message.item_count)
    if count < message.item_count:
        return Outcome(progress=(joined,) if added else ())
    # Every garment is in. Parallel last garments may all see that: the one that wins the job's end
    # runs the ending (a retry of that same delivery too); the others stop there.

    def ending() -> ResultDocument:
        garments = [GarmentDone.model_validate_json(raw) for raw in joined_garments(ctx.store, job.job_id)]
        return finish(garments, ctx)

    return Outcome(
        progress=(joined, progress(job, ProgressStep.EXPANDED), progress(job, ProgressStep.COMPLETED)),
        ending=ending,
    )


def finish(garments: list[GarmentDone], ctx: StageContext) -> ResultDocument:
    """Encode and store every output; the document names them (links are signed when it is published)."""
    started = time.perf_counter()
    first, settings, store = garments[0], ctx.settings, ctx.store
    job = first.job
    prefix = results_prefix(job.user_id, job.cloth_id, job.job_id)
    fmt, kind = settings.output_format, CONTENT_TYPES[settings.output_format]
    writes: list[Future] = []
    encoders = ThreadPoolExecutor(max_workers=os.cpu_count() or 2)  # zlib and libwebp release the GIL

    def put(name: str, render: Callable[[], bytes], content_type: str) -> str:
        """Encode and store in the background (in this delivery's context, so its trace counts the
        writes); the name is known at once."""
        writes.append(encoders.submit(copy_context().run,
            lambda: store.write(prefix + name, render(), content_type=content_type, metadata=OUTPUT_MARKER)))
        return name

    with encoders:
        cutout = put(f"cutout.{fmt}", partial(encode, ctx.images.get(first.cutout), fmt), kind)
        segmented, expanded = [], []
        for garment in garments:
            crop_image, index = ctx.images.get(garment.crop), garment.item_index
            crop = put(f"items/{index}.{fmt}", partial(encode, crop_image, fmt), kind)
            thumb = put(f"items/{index}.thumb.webp", partial(thumbnail_webp, crop_image, settings.thumbnail_side),
                        "image/webp")
            segmented.append(SegmentedItem(label=garment.label, category=garment.category,
                                           confidence=garment.confidence, area_pixels=garment.area_pixels, bbox=garment.bbox, url=crop,
                                           thumbnail_url=thumb))
            if garment.expanded:
                shot = put(f"items/{index}.expanded.{fmt}", partial(encode, ctx.images.get(garment.expanded), fmt), kind)
                expanded.append(ExpandedItem(label=garment.label, url=shot, expanded=True, note=garment.expand_note))
            else:
                expanded.append(ExpandedItem(label=garment.label, url=crop, expanded=False, note=garment.expand_note))
    for write in writes:
        write.result()  # every output is stored (or the first failure raises) before the document

    timings = {k: v for g in garments for k, v in g.timings.items() if k != "expand"}
    timings["expand"] = max(g.timings.get("expand", 0) for g in garments)  # garments expand in parallel
    timings["deliver"] = round((time.perf_counter() - started) * 1000)
    primary = garments[0]
    document = ResultDocument(
        job_id=job.job_id, cloth_id=job.cloth_id, user_id=job.user_id, success=True,
        image_type=primary.image_type or job.image_type,
        suggested_category=primary.category, segmentation_label=primary.label, area_pixels=primary.area_pixels,
        removed_bg_image_url=cutout, segmented_image_url=segmented[0].url,
        inpainted_image_url=expanded[0].url if expanded[0].expanded else None,
        all_segmented_items=segmented, all_expanded_items=expanded,
        upload_generation=job.upload_generation, uploaded_at=job.uploaded_at,
        timings=timings, providers={**primary.providers, "deliver": fmt},
    )
    # The model's view is kept; the pick is this job's alone.
    cache.save(store, settings, primary.cache_key, document, degraded=any(g.degraded for g in garments))
    return document.with_pick(job.category_hint)


def warm_up(ctx: StageContext) -> None:
    pass  # nothing to load: image_io's encoders are imported with this module
