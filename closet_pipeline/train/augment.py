"""Batched augmentation on tensors (one affine warp per photo, colour jitter), so 2 cores keep up.

Random numbers come from a CPU generator (the same draws on any device); the work runs where the
images are."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def to_float(images: torch.Tensor) -> torch.Tensor:
    """N, H, W, 3 uint8 -> N, 3, H, W float in [0, 1]."""
    return images.permute(0, 3, 1, 2).float() / 255.0


def random_affine(n: int, generator: torch.Generator, zoom: tuple[float, float], aspect: float, shift: float,
                  flip: bool = True) -> torch.Tensor:
    """N x 2 x 3 sampling matrices: zoom < 1 crops in, > 1 shows more (padded), aspect stretches."""
    s = torch.empty(n).uniform_(*zoom, generator=generator)
    r = torch.exp(torch.empty(n).uniform_(-math.log(aspect), math.log(aspect), generator=generator))
    sx, sy = s * r.sqrt(), s / r.sqrt()
    if flip:
        sx = sx * torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    tx = torch.empty(n).uniform_(-shift, shift, generator=generator)
    ty = torch.empty(n).uniform_(-shift, shift, generator=generator)
    zero = torch.zeros(n)
    return torch.stack([torch.stack([sx, zero, tx], 1), torch.stack([zero, sy, ty], 1)], 1)


def warp(x: torch.Tensor, theta: torch.Tensor, mode: str, padding: str) -> torch.Tensor:
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode=padding, align_corners=False)


def colour_jitter(x: torch.Tensor, generator: torch.Generator, strength: float = 0.3) -> torch.Tensor:
    n = x.shape[0]

    def factor() -> torch.Tensor:
        return torch.empty(n, 1, 1, 1).uniform_(1 - strength, 1 + strength, generator=generator).to(x.device)

    x = x * factor()  # brightness
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * factor() + mean  # contrast
    grey = x.mean(dim=1, keepdim=True)
    x = (x - grey) * factor() + grey  # saturation
    # A small per-channel shift stands in for hue and white balance.
    x = x + torch.empty(n, 3, 1, 1).uniform_(-0.05, 0.05, generator=generator).to(x.device)
    return x.clamp(0, 1)
