"""Pretrained weights from the team's TensorFlow Lite files, as float32 arrays keyed by layer name.

The files (`../shared/pretrained`, Apache-2.0, MODELS.md) are quantisation-aware trained MobileNetV2
networks with batch norm folded into each convolution: a layer is one weight tensor (uint8, a scale
and zero point per output channel or per tensor) and one int32 bias. real = scale x (q - zero_point).
Layers are named by TensorFlow's scope ("MobilenetV2/expanded_conv_3/expand", "aspp0"), which
`nets.py` uses for its own modules, so loading is a lookup and a transpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from closet_pipeline.train.splits import DATASETS

PRETRAINED = DATASETS.parent / "pretrained"
IMAGENET = PRETRAINED / "mobilenet_v2_1.0_224_quant.tflite"
PASCAL = PRETRAINED / "deeplabv3_mnv2_pascal_quant.tflite"
# sha256 of the files MODELS.md's figures were trained from (the team folder's README lists them).
SHA256 = {
    IMAGENET.name: "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776",
    PASCAL.name: "350af47fd346ea6d74b58833a351f583ba860e9806ec5bd292ff8d8f1f249398",
}


@dataclass(frozen=True)
class Layer:
    weight: np.ndarray  # torch layout: out, in/groups, kh, kw
    bias: np.ndarray
    depthwise: bool
    stride: int
    dilation: int


def _dequantised(tensor, buffers) -> np.ndarray:
    import tflite  # training-only dependency

    raw = buffers(tensor.Buffer()).DataAsNumpy()
    dtype = {tflite.TensorType.UINT8: np.uint8, tflite.TensorType.INT8: np.int8,
             tflite.TensorType.INT32: np.int32}[tensor.Type()]
    values = np.frombuffer(raw.tobytes(), dtype).reshape(tensor.ShapeAsNumpy()).astype(np.float64)
    quant = tensor.Quantization()
    scale, zero = quant.ScaleAsNumpy(), quant.ZeroPointAsNumpy()
    shape = [1] * values.ndim
    if np.size(scale) > 1:
        shape[quant.QuantizedDimension()] = -1
    return ((values - np.reshape(zero, shape)) * np.reshape(scale, shape)).astype(np.float32)


def scope(tensor_name: str) -> str:
    """'A/b/Conv2D_Fold;A/b/weights_quant/FakeQuant...' -> 'A/b'."""
    for part in tensor_name.split(";"):
        if "/weights_quant/" in part:
            return part.split("/weights_quant/")[0]
    raise KeyError(f"no layer scope in tensor name {tensor_name!r}")


def layers(path: Path) -> dict[str, Layer]:
    """Every convolution of a TFLite file, dequantised, by its TensorFlow scope."""
    import tflite

    from shared.media.model_weights import sha256_of

    if sha256_of(path) != SHA256[path.name]:
        raise SystemExit(f"{path}: sha256 is not the one MODELS.md was trained from")
    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    graph = model.Subgraphs(0)
    found = {}
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin not in (tflite.BuiltinOperator.CONV_2D, tflite.BuiltinOperator.DEPTHWISE_CONV_2D):
            continue
        depthwise = builtin == tflite.BuiltinOperator.DEPTHWISE_CONV_2D
        options = tflite.DepthwiseConv2DOptions() if depthwise else tflite.Conv2DOptions()
        table = op.BuiltinOptions()
        options.Init(table.Bytes, table.Pos)
        weight_tensor = graph.Tensors(op.Inputs(1))
        weight = _dequantised(weight_tensor, model.Buffers)
        # TFLite: conv out,kh,kw,in; depthwise 1,kh,kw,channels. Torch: out,in/groups,kh,kw.
        weight = weight.transpose(3, 0, 1, 2) if depthwise else weight.transpose(0, 3, 1, 2)
        bias = _dequantised(graph.Tensors(op.Inputs(2)), model.Buffers)
        found[scope(weight_tensor.Name().decode())] = Layer(
            np.ascontiguousarray(weight), bias, depthwise, options.StrideH(), options.DilationHFactor())
    return found
