"""Stage 2, remove_background: the working image in, the same image with a transparent
background out, from the first provider of the chain that serves, its mask made opaque inside the
garment and its soft edges cleared of the background's colour (shared.media.matting)."""

from __future__ import annotations

import time

from shared.documents import ProgressStep
from shared.layout import work_key
from shared.media import matting
from shared.messages import CutoutDone, IngestDone
from shared.providers.background import BackgroundChain, build_background_chain
from shared.stages.context import Outcome, StageContext
from shared.stages.progress import progress

accepts, emits = IngestDone, CutoutDone


def chain(ctx: StageContext) -> BackgroundChain:
    return ctx.once("background", lambda: build_background_chain(ctx.settings))


def run(message: IngestDone, ctx: StageContext) -> Outcome:
    started = time.perf_counter()
    job = message.job
    image = ctx.images.get(message.working_image)
    result = chain(ctx).mask(image)
    cutout = matting.cutout(image, result.mask)
    key = work_key(job.job_id, "cutout.png")
    ctx.images.put(key, cutout)
    done = CutoutDone(
        job=job,
        attempt=message.attempt,
        timings={**message.timings, "remove_background": round((time.perf_counter() - started) * 1000)},
        providers={**message.providers, "remove_background": result.provider,
                   # a provider that failed before the one that served, and why (the result shows it)
                   **({"remove_background_skipped": "; ".join(result.skipped)} if result.skipped else {})},
        cutout=key,
        cache_key=message.cache_key,
    )
    return Outcome(
        next=(done,),
        progress=(progress(job, ProgressStep.BACKGROUND_REMOVED), progress(job, ProgressStep.ANALYZING)),
    )


def warm_up(ctx: StageContext) -> None:
    chain(ctx).warm_up()
