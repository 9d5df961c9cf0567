"""Stage 4, expand: an optional generative clean-up of one garment into a product shot.

Generation is slow and costs money, so the `auto` policy calls the model only where it can help:
the garment is cut off by the photo's edge, or too small to show well. Any failure keeps the
un-expanded crop and says why; it never fails the job.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout

from PIL import Image

from shared.config import ExpandPolicy
from shared.errors import PipelineError, ProviderFailed
from shared.layout import work_key
from shared.messages import GarmentDone, GarmentFound
from shared.providers.generation import Generator, build_generator
from shared.stages.context import Outcome, StageContext

accepts, emits = GarmentFound, GarmentDone

log = logging.getLogger(__name__)


def needs_generation(garment: GarmentFound, policy: ExpandPolicy, small_side: int) -> tuple[bool, str]:
    """Whether to call the model for this garment, and the reason in words."""
    if policy is ExpandPolicy.NEVER:
        return False, "expand policy is never"
    if policy is ExpandPolicy.ALWAYS:
        return True, "expand policy is always"
    left, top, right, bottom = garment.bbox
    if garment.touches_border:
        return True, "the garment is cut off by the photo's edge"
    if max(right - left, bottom - top) < small_side:
        return True, f"the garment is smaller than {small_side} px"
    return False, "not needed: the garment is whole and large enough"


def white_canvas(crop: Image.Image, margin: int) -> Image.Image:
    """The crop on white, `margin` px larger on each side: the model fills the margin."""
    canvas = Image.new("RGB", (crop.width + 2 * margin, crop.height + 2 * margin), (255, 255, 255))
    canvas.paste(crop, (margin, margin), crop if crop.mode == "RGBA" else None)
    return canvas


def generator(ctx: StageContext) -> Generator | None:
    """None when expand cannot call a model (policy never, or no key configured)."""
    return ctx.once("generator", lambda: build_generator(ctx.settings)
                    if ctx.settings.expand_generation_enabled() else None)


# What a generation call may use of the function's remaining time: the rest is for storing the
# result and publishing (a few seconds at most).
RESERVE_S = 5.0


def run(message: GarmentFound, ctx: StageContext) -> Outcome:
    started = time.perf_counter()
    settings = ctx.settings
    wanted, reason = needs_generation(message, settings.expand_policy, settings.expand_small_side)
    expanded_key, note, provider = None, reason, "none"
    model = generator(ctx) if wanted else None
    if wanted and model is None:
        note = f"skipped ({reason}): no generative provider is configured"
    elif wanted:
        provider = model.name
        crop = ctx.images.get(message.crop)
        budget = ctx.remaining_s() - RESERVE_S
        try:
            if budget <= 0:
                raise ProviderFailed("no time was left in this delivery")
            canvas, deadline = white_canvas(crop, settings.expand_margin), time.monotonic() + budget
            image = _within(budget, model.expand, canvas, settings.expand_prompt, deadline)
            expanded_key = work_key(message.job.job_id, f"items/{message.item_index}.expanded.png")
            ctx.images.put(expanded_key, image.convert("RGB"))
            note = f"expanded: {reason}"
        except PipelineError as exc:
            note = f"kept the crop: {exc.message}"
        except Exception as exc:  # a provider bug must not cost the user their garment
            log.exception("expand provider %s failed unexpectedly", provider)
            note = f"kept the crop: the generative provider failed ({type(exc).__name__})"
    fields = message.model_dump(exclude={"timings", "providers"})
    return Outcome(next=(GarmentDone(
        **fields,
        timings={**message.timings, "expand": round((time.perf_counter() - started) * 1000)},
        providers={**message.providers, "expand": provider},
        expanded=expanded_key,
        expand_note=note,
        # A generation that was tried and did not happen (a failure, no time left): not a result to cache.
        degraded=model is not None and expanded_key is None,
    ),))


def _within(seconds: float, call, *args):
    """The call's answer, or ProviderFailed once `seconds` have passed: a request inside the provider
    cannot take the delivery past its function's timeout (the provider is given the same deadline: it
    waits for no retry that would outlast it)."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(call, *args).result(timeout=seconds)
    except FuturesTimeout:
        raise ProviderFailed(f"the generative provider did not answer within {seconds:.0f} s") from None
    finally:
        pool.shutdown(wait=False)  # an abandoned call finishes (or times out) on its own


def warm_up(ctx: StageContext) -> None:
    model = generator(ctx)
    if model is not None:
        model.warm_up()
