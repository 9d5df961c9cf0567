"""Stage 4, expand: an optional generative clean-up of one garment into a product shot.

Generation is slow and costs money, so the `auto` policy calls the model only where it can help:
the garment is cut off by the photo's edge, or too small to show well. Any failure keeps the
un-expanded crop and says why; it never fails the job.
"""

from __future__ import annotations

import logging
import time

from PIL import Image

from shared.config import ExpandPolicy
from shared.errors import PipelineError
from shared.layout import work_key
from shared.messages import GarmentDone, GarmentFound
from shared.providers.generation import Generator, build_generator
from shared.stages.context import StageContext, StageOutcome

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


def run(message: GarmentFound, ctx: StageContext) -> StageOutcome:
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
        try:
            image = model.expand(white_canvas(crop, settings.expand_margin), settings.expand_prompt)
            expanded_key = work_key(message.job.job_id, f"items/{message.item_index}.expanded.png")
            ctx.images.put(expanded_key, image.convert("RGB"))
            note = f"expanded: {reason}"
        except PipelineError as exc:
            note = f"kept the crop: {exc.message}"
        except Exception as exc:  # a provider bug must not cost the user their garment
            log.exception("expand provider %s failed unexpectedly", provider)
            note = f"kept the crop: the generative provider failed ({type(exc).__name__})"
    fields = message.model_dump(exclude={"timings", "providers"})
    return StageOutcome(next=(GarmentDone(
        **fields,
        timings={**message.timings, "expand": round((time.perf_counter() - started) * 1000)},
        providers={**message.providers, "expand": provider},
        expanded=expanded_key,
        expand_note=note,
    ),))


def warm_up(ctx: StageContext) -> None:
    model = generator(ctx)
    if model is not None:
        model.warm_up()
