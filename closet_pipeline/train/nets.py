"""The garment networks: MobileNetV2 (ImageNet) under the classifier, DeepLabv3-MobileNetV2 (PASCAL)
under the parser, both started from the team's pretrained files (`pretrained.py`).

Modules carry TensorFlow's layer scopes (`tf_name`) so the pretrained weights load by name. Both
networks take float32 RGB in [0, 1], NCHW, and normalise inside, so the ONNX files need no
preprocessing beyond a resize.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from closet_pipeline.train.pretrained import Layer

# MobileNetV2 1.0: (expansion, channels, repeats, stride) per stage; 17 inverted residual blocks.
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
LOW_LEVEL_BLOCK = 2  # output of the third block: 24 channels at stride 4, the parser's decoder skip


class ConvUnit(nn.Module):
    """One TensorFlow convolution with its folded batch norm (a bias) and activation, 'SAME' padding."""

    def __init__(self, tf_name: str, cin: int, cout: int, kernel: int = 1, stride: int = 1, dilation: int = 1,
                 depthwise: bool = False, activation: str | None = "relu6") -> None:
        super().__init__()
        self.tf_name, self.stride, self.kernel, self.dilation = tf_name, stride, kernel, dilation
        self.conv = nn.Conv2d(cin, cout, kernel, stride, 0, dilation, groups=cin if depthwise else 1, bias=True)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel > 1:
            # TensorFlow's SAME: the extra pixel of an even-sized stride-2 input goes after, not before.
            # ONNX export fixes these pads from the example's size; they hold for every input whose
            # sides are multiples of 16 (inputs.parser_size), as every stride-2 input is then even.
            span = self.dilation * (self.kernel - 1)
            pads = []
            for size in (x.shape[-1], x.shape[-2]):
                total = max((-(-size // self.stride) - 1) * self.stride + span + 1 - size, 0)
                pads += [total // 2, total - total // 2]
            x = F.pad(x, pads)
        x = self.conv(x)
        if self.activation == "relu6":
            return F.relu6(x)
        return F.relu(x) if self.activation == "relu" else x

    def load(self, layer: Layer) -> None:
        if tuple(layer.weight.shape) != tuple(self.conv.weight.shape) or layer.stride != self.stride:
            raise ValueError(f"{self.tf_name}: pretrained {layer.weight.shape} stride {layer.stride}, "
                             f"module {tuple(self.conv.weight.shape)} stride {self.stride}")
        with torch.no_grad():
            self.conv.weight.copy_(torch.from_numpy(layer.weight))
            self.conv.bias.copy_(torch.from_numpy(layer.bias))


class InvertedResidual(nn.Module):
    def __init__(self, name: str, cin: int, cout: int, expansion: int, stride: int, dilation: int) -> None:
        super().__init__()
        hidden = cin * expansion
        units = [] if expansion == 1 else [ConvUnit(f"{name}/expand", cin, hidden)]
        units += [ConvUnit(f"{name}/depthwise", hidden, hidden, 3, stride, dilation, depthwise=True),
                  ConvUnit(f"{name}/project", hidden, cout, activation=None)]
        self.units = nn.Sequential(*units)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.units(x)
        return x + y if self.residual else y


class Normalise(nn.Module):
    """[0, 1] RGB -> [-1, 1], as the pretrained networks were trained."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2.0 - 1.0


class MobileNetV2(nn.Module):
    """The backbone; output stride 32, or 16 with the last stage dilated (DeepLab's)."""

    def __init__(self, output_stride: int = 32) -> None:
        super().__init__()
        self.normalise = Normalise()
        self.stem = ConvUnit("MobilenetV2/Conv", 3, 32, 3, 2)
        blocks, cin, stride_so_far, dilation = [], 32, 2, 1
        for expansion, cout, repeats, stride in STAGES:
            for r in range(repeats):
                s, rate = (stride if r == 0 else 1), dilation
                if s == 2 and stride_so_far >= output_stride:
                    # Keep the resolution and widen the view instead; as in TensorFlow's slim, the
                    # block that would have strided keeps the old rate, the ones after it double it.
                    s, dilation = 1, dilation * 2
                elif s == 2:
                    stride_so_far *= 2
                name = "MobilenetV2/expanded_conv" + (f"_{len(blocks)}" if blocks else "")
                blocks.append(InvertedResidual(name, cin, cout, expansion, s, rate))
                cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.channels = cin

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(low-level features at stride 4, final features)."""
        x = self.stem(self.normalise(x))
        low = x
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index == LOW_LEVEL_BLOCK:
                low = x
        return low, x


def load_pretrained(model: nn.Module, weights: dict[str, Layer]) -> list[str]:
    """Copy every pretrained layer whose scope a module carries; the scopes left without weights."""
    missing = []
    for module in model.modules():
        if isinstance(module, ConvUnit):
            if module.tf_name in weights:
                module.load(weights[module.tf_name])
            else:
                missing.append(module.tf_name)
    return missing


class GarmentClassifier(nn.Module):
    """MobileNetV2 (ImageNet) with two heads: label logits and image-kind logits (single item, worn)."""

    def __init__(self, labels: int, kinds: int = 2) -> None:
        super().__init__()
        self.backbone = MobileNetV2()
        self.last = ConvUnit("MobilenetV2/Conv_1", self.backbone.channels, 1280)
        self.dropout = nn.Dropout(0.2)
        self.labels = nn.Linear(1280, labels)
        self.kinds = nn.Linear(1280, kinds)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.last(self.backbone(x)[1]).mean(dim=(2, 3))
        pooled = self.dropout(pooled)
        return self.labels(pooled), self.kinds(pooled)


class SeparableUnit(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.Conv2d(cin, cin, 3, 1, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU(inplace=True),
                         nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class GarmentParser(nn.Module):
    """DeepLabv3-MobileNetV2 (PASCAL, output stride 16, its ASPP) with a DeepLabv3+ decoder on the
    stride-4 features, so thin garments (belts, glasses, straps) survive: logits at stride 4."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.backbone = MobileNetV2(output_stride=16)
        channels = self.backbone.channels
        self.aspp0 = ConvUnit("aspp0", channels, 256, activation="relu")
        self.image_pooling = ConvUnit("image_pooling", channels, 256, activation="relu")
        self.concat_projection = ConvUnit("concat_projection", 512, 256, activation="relu")
        self.low_level = nn.Sequential(nn.Conv2d(24, 48, 1, bias=False), nn.BatchNorm2d(48), nn.ReLU(inplace=True))
        self.decoder = nn.Sequential(SeparableUnit(256 + 48, 128), SeparableUnit(128, 128))
        self.classify = nn.Conv2d(128, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low, high = self.backbone(x)
        local = self.aspp0(high)
        pooled = self.image_pooling(high.mean(dim=(2, 3), keepdim=True)).expand_as(local)
        context = self.concat_projection(torch.cat([pooled, local], 1))
        context = F.interpolate(context, size=low.shape[2:], mode="bilinear", align_corners=False)
        return self.classify(self.decoder(torch.cat([context, self.low_level(low)], 1)))
