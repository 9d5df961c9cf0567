"""From a background mask to a clean cut-out: opaque inside the garment, no background colour at its edge.

Whatever provider served the mask, `cutout(photo, mask)` applies two corrections.

1. Opaque inside the outline (`solid_alpha`). Background removers leave parts of a garment half
   transparent (a leg, a hat's brim, a sole in shade). With "garment" meaning alpha >= 0.5:

   - an *enclosed region* is a connected region of alpha < 0.5 fully surrounded by the garment;
   - it joins the garment when its mean alpha is at least 0.45 (`NEAR_SOLID_ALPHA`: just under the
     threshold, whatever its size), or at least 0.35 (`HOLE_ALPHA`) over at least 0.05 % of the
     garment's filled outline (`HOLE_MIN_FRACTION`): the remover was fairly sure of it;
   - anything else is a **real hole** (the photo shows background through the garment: between a
     bag's handles, between legs, the remover saw it) and keeps its alpha, as does everything
     outside the garment, enclosed or open to the edge;
   - inside the garment alpha rises to opaque: the first `EDGE_KEEP` pixels from the outline (or
     from a hole) keep their alpha, the next `EDGE_WIDTH` ramp up, the rest are opaque (widths at
     1024 px on the long side, IS-Net's mask resolution, and scaled with the mask);
     alpha = max(alpha, ramp), so alpha only ever goes up and the soft outer edge stays soft.

   The thresholds were chosen on the CCP validation part (closet_pipeline.bench.matting_quality
   --part validation), not on the test part: enclosed regions of lower mean alpha, and morphological
   closing of the outline, proved to be mostly background in photos of people (gaps between arm
   and body, between legs) and lowered the foreground IoU.

   The shapes are worked out at most 1024 px on the long side and the opacity ramp is scaled up
   bilinearly, so a 12 MP photo costs little more than a small one.

2. Foreground colour at soft edges (`foreground_colours`). A pixel with 0 < alpha < 1 mixes the
   garment and the background: I = a F + (1 - a) B. Keeping I leaves a rim of the background's
   colour (a red fringe on a red bedsheet). As fast matting estimators do (blur fusion, Forte &
   Pitie 2021), F and B are first estimated locally, as the mean colour of the nearby confidently
   opaque (alpha >= 0.95) and confidently transparent (alpha <= 0.05) pixels. Where those two
   colours differ (by `MIN_CONTRAST`), the pixel's own colour also tells its share of garment (its
   place on the line from B^ to F^), and the smaller of that and alpha is used: masks often reach a
   pixel or two into the background. Then the smallest change to the estimates that satisfies the
   compositing equation is taken: F = F^ + a r / (a^2 + (1 - a)^2), with r = I - a F^ - (1 - a) B^.
   Only pixels with 0 < alpha < 255 change colour: opaque pixels keep the photo's colour, and so do
   transparent ones (the photo under alpha 0 is still read by later stages).
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

SOLID_ALPHA = 128          # foreground at the usual threshold
HOLE_ALPHA = 90            # mean alpha (0.35) from which an enclosed region counts as garment
HOLE_MIN_FRACTION = 0.0005 # ... if it covers at least this much of the garment's filled outline
NEAR_SOLID_ALPHA = 115     # mean alpha (0.45) from which an enclosed region of any size is garment
EDGE_KEEP = 4.0            # px at 1024 px on the long side: the soft edge kept inside the outline
EDGE_WIDTH = 4.0           # px at 1024 px on the long side: then the ramp to opaque
WORK_SIDE = 1024           # shapes are worked out at most this size
COLOUR_SIDE = 512          # local colour means are worked out at most this size ...
COLOUR_WINDOW = 9          # ... over a window this wide (px at that size)
SURE_FOREGROUND = 242      # alpha >= 0.95
SURE_BACKGROUND = 13       # alpha <= 0.05
MIN_CONTRAST = 40.0        # RGB distance between the local garment and background colours to unmix by colour


def cutout(photo: Image.Image, mask: Image.Image) -> Image.Image:
    """RGBA cut-out of `photo` with `mask` ("L", same size) made opaque inside and its edges decontaminated."""
    if mask.size != photo.size:
        raise ValueError(f"mask {mask.size} and photo {photo.size} differ in size")
    rgb = np.asarray(photo.convert("RGB"))
    alpha = solid_alpha(np.asarray(mask.convert("L")))
    cut = Image.fromarray(foreground_colours(rgb, alpha))
    cut.putalpha(Image.fromarray(alpha))
    return cut


def _work_size(shape: tuple[int, int], side: int = WORK_SIDE) -> tuple[int, int] | None:
    """(width, height) of the working copy, or None when the photo is already small enough."""
    height, width = shape
    scale = side / max(shape)
    return None if scale >= 1.0 else (max(1, round(width * scale)), max(1, round(height * scale)))


def _resize(array: np.ndarray, size: tuple[int, int], resample) -> np.ndarray:
    """uint8 L or RGB array to (width, height): Pillow's 8-bit resizes are the fast ones."""
    return np.asarray(Image.fromarray(array).resize(size, resample))


def solid_alpha(alpha: np.ndarray) -> np.ndarray:
    """uint8 alpha -> uint8 alpha, opaque inside the garment's outline except for real holes (module doc)."""
    work_size = _work_size(alpha.shape)
    work = alpha if work_size is None else _resize(alpha, work_size, Image.Resampling.BOX)
    ramp = np.rint(_opacity_ramp(work)).astype(np.uint8)
    if work_size is not None:
        ramp = _resize(ramp, (alpha.shape[1], alpha.shape[0]), Image.Resampling.BILINEAR)
    return np.maximum(alpha, ramp)


def _opacity_ramp(alpha: np.ndarray) -> np.ndarray:
    """At the working size: 0 outside the garment and on its first EDGE_KEEP pixels, then rising to 255."""
    solid = alpha >= SOLID_ALPHA
    if not solid.any():
        return np.zeros(alpha.shape, np.float32)
    garment = solid.copy()
    labels, count = ndimage.label(ndimage.binary_fill_holes(solid) & ~solid)
    if count:
        # An enclosed region joins the garment when the remover was fairly sure of it on the whole
        # and it is large enough to judge; anything else is a real hole and keeps its alpha.
        sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
        means = np.bincount(labels.ravel(), weights=alpha.ravel(), minlength=count + 1)[1:] / sizes
        large = sizes >= HOLE_MIN_FRACTION * (solid.sum() + sizes.sum())
        joins = (means >= NEAR_SOLID_ALPHA) | ((means >= HOLE_ALPHA) & large)
        garment |= np.concatenate([[False], joins])[labels]
    # The remover's own soft edge reaches a few pixels inside the outline: it is kept, then alpha
    # rises to opaque. Both widths follow the mask's own resolution (IS-Net's is 1024 px).
    scale = max(alpha.shape) / WORK_SIDE
    keep, width = max(2.0, EDGE_KEEP * scale), max(1.0, EDGE_WIDTH * scale)
    distance = ndimage.distance_transform_edt(garment)
    return np.clip((distance - keep) / width, 0.0, 1.0) * 255.0


def foreground_colours(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 photo and HxW alpha -> the photo with the foreground colour estimated where 0 < alpha < 255."""
    soft = np.flatnonzero((alpha - np.uint8(1)) < 254)  # 0 < alpha < 255 in one pass: 0 wraps to 255
    out = rgb.copy()
    if soft.size == 0:
        return out
    work_size = _work_size(alpha.shape, COLOUR_SIDE)
    if work_size is None:
        work_rgb, work_alpha = rgb, alpha
    else:
        work_rgb = _resize(rgb, work_size, Image.Resampling.BOX)
        work_alpha = _resize(alpha, work_size, Image.Resampling.BOX)
    rows, cols = np.divmod(soft, alpha.shape[1])
    f_hat, b_hat = (_sample(_local_mean(work_rgb, sure), rows, cols, alpha.shape)
                    for sure in (work_alpha >= SURE_FOREGROUND, work_alpha <= SURE_BACKGROUND))
    photo = rgb.reshape(-1, 3)[soft].astype(np.float32)
    a = alpha.reshape(-1)[soft].astype(np.float32)[:, None] * (1.0 / 255.0)
    # Where garment and background differ enough, the pixel's colour says how much background it
    # holds (its place on the line from B^ to F^); masks often run a little wide, so the smaller of
    # that and the mask's alpha is the share of garment used to unmix it.
    line = f_hat - b_hat
    length2 = (line * line).sum(axis=1, keepdims=True)
    along = ((photo - b_hat) * line).sum(axis=1, keepdims=True) / np.maximum(length2, 1.0)
    a = np.where(length2 >= MIN_CONTRAST ** 2, np.minimum(a, np.clip(along, 0.0, 1.0)), a)
    residual = photo - a * f_hat - (1.0 - a) * b_hat
    estimate = f_hat + a * residual / (a * a + (1.0 - a) ** 2)
    out.reshape(-1, 3)[soft] = np.clip(np.rint(estimate), 0, 255).astype(np.uint8)
    return out


def _sample(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The working-size HxWx3 image at full-size pixel positions, nearest neighbour: (N, 3) float32.

    The local means are smooth (over COLOUR_WINDOW pixels), so the nearest working pixel
    is close enough; looking up only the soft pixels is far cheaper than scaling the image up."""
    height, width = image.shape[:2]
    y = np.minimum((rows * height) // shape[0], height - 1)
    x = np.minimum((cols * width) // shape[1], width - 1)
    return np.take(image.reshape(-1, 3), y * width + x, axis=0).astype(np.float32)


def _local_mean(rgb: np.ndarray, sure: np.ndarray) -> np.ndarray:
    """uint8 mean colour of the `sure` pixels in a window around each pixel, else of the nearest one."""
    if not sure.any():
        return rgb  # nothing sure to learn from: keep the photo's colour
    # One box filter over colour-times-weight and weight together, channels first so that each
    # pass runs along contiguous rows: a normalised local mean.
    stack = np.empty((4,) + sure.shape, np.float32)
    stack[:3] = np.moveaxis(rgb, -1, 0)
    stack[:3] *= sure
    stack[3] = sure
    ndimage.uniform_filter(stack, size=(1, COLOUR_WINDOW, COLOUR_WINDOW), output=stack, mode="nearest")
    reached = stack[3] > 1e-3
    mean = np.moveaxis(stack[:3] / np.maximum(stack[3], 1e-3), 0, -1)
    if not reached.all():
        # Far from anything sure (faint specks in the background): the nearest sure pixel's colour,
        # looked up on a coarse grid, since these pixels are nearly transparent anyway.
        step = max(1, max(sure.shape) // 256)
        coarse = sure[::step, ::step]
        if coarse.any():
            _, (near_rows, near_cols) = ndimage.distance_transform_edt(~coarse, return_indices=True)
            far_rows, far_cols = np.nonzero(~reached)
            cr, cc = far_rows // step, far_cols // step
            mean[far_rows, far_cols] = rgb[near_rows[cr, cc] * step, near_cols[cr, cc] * step]
        else:
            mean[~reached] = rgb[sure].mean(axis=0)
    return np.clip(np.rint(mean), 0, 255).astype(np.uint8)
