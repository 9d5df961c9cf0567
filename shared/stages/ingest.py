"""Stage 1, ingest: the uploaded bytes in, a normalised working image out (or, on a cache hit, the
job's ending: serving the cached result, which the runtime runs if this delivery wins the job's end)."""

from __future__ import annotations

import time

from shared.adapters.blobstore import BlobNotFound
from shared.adapters.blobstore.base import OUTPUT_MARKER
from shared.documents import ProgressStep
from shared.errors import InvalidObjectPath, UploadNotFound
from shared.layout import UPLOAD_METADATA, work_key
from shared.media.image_io import check_byte_size, normalise
from shared.messages import Category, ImageType, IngestDone, Job, JobRequest
from shared.stages import cache
from shared.stages.context import Outcome, StageContext
from shared.stages.progress import progress

accepts, emits = JobRequest, IngestDone


def run(request: JobRequest, ctx: StageContext) -> Outcome:
    started = time.perf_counter()
    job, settings = request.job, ctx.settings
    try:  # exactly the version the notification named: an overwrite is another job, never mixed in
        info = ctx.store.stat(job.upload, generation=job.upload_generation)
        if info.metadata.get(next(iter(OUTPUT_MARKER))) == "true":
            raise InvalidObjectPath(f"{job.upload} is one of the pipeline's own outputs; it is not processed again.")
        check_byte_size(info.size, settings.max_upload_bytes)  # from its metadata, before a byte is downloaded
        upload = ctx.store.read(job.upload, generation=info.generation)
    except BlobNotFound:
        raise UploadNotFound() from None
    job = with_upload_choices(job, info.metadata)
    cached = cache.lookup(ctx.store, settings, upload.data, job.image_type)  # before anything is decoded
    if cached.entry is not None:
        return Outcome(progress=(progress(job, ProgressStep.COMPLETED),),
                            ending=lambda: cached.serve(job, {"ingest": _ms_since(started)}))

    image = normalise(
        upload.data,
        max_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_pixels,
        min_side=settings.min_side,
        max_side=settings.working_max_side,
    )
    timings = {"ingest": _ms_since(started)}

    working = work_key(job.job_id, "working.png")
    ctx.images.put(working, image.image)
    timings["ingest"] = _ms_since(started)
    done = IngestDone(
        job=job, attempt=request.attempt, timings=timings, providers={},
        working_image=working, cache_key=cached.key, width=image.image.width, height=image.image.height,
    )
    return Outcome(next=(done,), progress=(progress(job, ProgressStep.REMOVING_BACKGROUND),))


def with_upload_choices(job: Job, metadata: dict[str, str]) -> Job:
    """The user's picks travel as the upload's metadata (x-goog-meta-category, x-goog-meta-image-type),
    signed headers of the upload URL (shared/http/upload_url.py). Unknown values are ignored: they are
    hints, not commands."""
    changes = {}
    category = metadata.get(UPLOAD_METADATA["category"], "").upper()
    image_type = metadata.get(UPLOAD_METADATA["imageType"], "").upper()
    if job.category_hint is None and category in Category.__members__:
        changes["category_hint"] = Category(category)
    if image_type in ImageType.__members__:
        changes["image_type"] = ImageType(image_type)
    return job.model_copy(update=changes) if changes else job


def warm_up(ctx: StageContext) -> None:
    pass  # image_io is imported above: its decoders and the HEIF plugin are registered by then


def _ms_since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
