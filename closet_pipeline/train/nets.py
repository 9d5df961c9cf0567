"""The two small networks, trained from scratch (no pretrained weights can be had here).

Both take float32 RGB in [0, 1], NCHW, and normalise inside, so the ONNX files need no preprocessing
beyond a resize.
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn(cin: int, cout: int, stride: int = 1, groups: int = 1, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Separable(nn.Module):
    """Depthwise 3x3 then pointwise 1x1 (MobileNet's block), with a residual when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.depthwise = conv_bn(cin, cin, stride, groups=cin)
        self.pointwise = conv_bn(cin, cout, kernel=1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pointwise(self.depthwise(x))
        return x + y if self.residual else y


class Normalise(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - 0.5) / 0.25


class GarmentClassifier(nn.Module):
    """Logits over the clothing dataset's labels."""

    def __init__(self, classes: int, width: int = 32) -> None:
        super().__init__()
        w = width
        plan = [(w, 2 * w, 1), (2 * w, 4 * w, 2), (4 * w, 4 * w, 1), (4 * w, 8 * w, 2), (8 * w, 8 * w, 1),
                (8 * w, 16 * w, 2), (16 * w, 16 * w, 1), (16 * w, 16 * w, 1), (16 * w, 32 * w, 2), (32 * w, 32 * w, 1)]
        self.features = nn.Sequential(Normalise(), conv_bn(3, w, 2), *(Separable(a, b, s) for a, b, s in plan))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(32 * w, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class Down(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.block = nn.Sequential(conv_bn(cin, cout, 2), Separable(cout, cout), Separable(cout, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class Up(nn.Module):
    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.block = nn.Sequential(conv_bn(cin + cskip, cout, kernel=1), Separable(cout, cout))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.block(torch.cat([self.up(x), skip], 1))


class GarmentParser(nn.Module):
    """A small U-Net: logits per pixel over the parser's classes, at the input's resolution / 2."""

    def __init__(self, classes: int, widths: tuple[int, ...] = (24, 32, 64, 128, 192)) -> None:
        super().__init__()
        self.normalise = Normalise()
        self.stem = conv_bn(3, widths[0], 2)  # 1/2
        self.downs = nn.ModuleList(Down(a, b) for a, b in zip(widths, widths[1:]))  # 1/4 ... 1/32
        # Context at the lowest resolution: a dilated separable pair sees most of the person.
        self.context = nn.Sequential(Separable(widths[-1], widths[-1]), Separable(widths[-1], widths[-1]))
        ups = []
        channels = widths[-1]
        for skip in reversed(widths[:-1]):
            ups.append(Up(channels, skip, skip))
            channels = skip
        self.ups = nn.ModuleList(ups)
        self.classify = nn.Conv2d(widths[0], classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(self.normalise(x))
        skips = [x]
        for down in self.downs:
            x = down(x)
            skips.append(x)
        x = self.context(x)
        for up, skip in zip(self.ups, reversed(skips[:-1])):
            x = up(x, skip)
        return self.classify(x)
