"""Static int8 (QDQ) quantization of IS-Net, measured against the published small graph.

    python -m closet_pipeline.bench.quantize [--side 1024] [--calibration 4] [--out DIR]

The small graph is already int8, quantized dynamically (ConvInteger + DynamicQuantizeLinear per
convolution); the medium graph is float16. A static QDQ graph needs a float32 one: the medium graph's
float16 tensors and casts are widened to float32 (`widen`), then onnxruntime.quantization.quantize_static
calibrates activation ranges (MinMax) on CCP *train* photos (closet_pipeline.train.splits) and writes
QDQ with per-channel int8 weights. Needs the `onnx` package (dev install). Tooling only: nothing here
is used by the functions unless the table in docs/floor.md says it wins.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from closet_pipeline.bench.matting_quality import CCP
from closet_pipeline.fetch_model import fetch
from closet_pipeline.train.splits import photos
from shared.config import Settings
from shared.providers.background.local_isnet import LocalIsnetRemover


def widen(source: Path, target: Path) -> Path:
    """The float16 graph with every float16 tensor and value made float32, and its casts dropped."""
    import onnx
    from onnx import TensorProto, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph

    def widened(tensor):
        return numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float32), tensor.name)

    for tensor in graph.initializer:
        if tensor.data_type == TensorProto.FLOAT16:
            tensor.CopyFrom(widened(tensor))
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.name == "value" and attribute.t.data_type == TensorProto.FLOAT16:
                attribute.t.CopyFrom(widened(attribute.t))
    # Casts to or from float16 become no-ops: drop them (the quantizer cannot carry a scale through a Cast).
    graph_outputs = {value.name for value in graph.output}
    for node in [n for n in graph.node if n.op_type == "Cast"]:
        if node.attribute[0].i in (TensorProto.FLOAT16, TensorProto.FLOAT) and node.output[0] not in graph_outputs:
            for other in graph.node:
                other.input[:] = [node.input[0] if name == node.output[0] else name for name in other.input]
            graph.node.remove(node)
    for value in (*graph.input, *graph.output):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT16:
            value.type.tensor_type.elem_type = TensorProto.FLOAT
    del graph.value_info[:]
    onnx.save(model, str(target))
    return target


class CcpTrainReader:
    """Calibration tensors: the first N photos of CCP's train part, prepared as the remover does."""

    def __init__(self, remover: LocalIsnetRemover, count: int, name: str) -> None:
        self.tensors = iter([remover.prepare(Image.open(p)) for p in photos(CCP / "photos", "train")[:count]])
        self.name = name

    def get_next(self):
        tensor = next(self.tensors, None)
        return None if tensor is None else {self.name: tensor}

    def rewind(self) -> None:  # onnxruntime calls it on some versions
        pass


EXCLUDED = ["/conv_in/Conv", *(f"/side{n}/Conv" for n in range(1, 7))]


def quantize(out: Path, side: int, count: int) -> Path:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    settings = Settings()
    medium = fetch(settings.model_dir, "medium", side, log=print)
    out.mkdir(parents=True, exist_ok=True)
    fp32 = widen(medium, out / f"medium-{side}-fp32.onnx")
    target = out / f"medium-{side}-qdq.onnx"
    remover = LocalIsnetRemover(fp32, settings.onnx_threads, side)
    # Convolutions only, and not the first one (it sees the photo) nor the side outputs (they make
    # the mask): quantizing every op or those cost rembg IoU in the first try (0.967 against 0.998).
    # All samples are held at once: CalibMaxIntermediateOutputs drops them unranged (onnxruntime 1.32).
    quantize_static(str(fp32), str(target), CcpTrainReader(remover, count, "input"),
                    quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                    op_types_to_quantize=["Conv"], nodes_to_exclude=EXCLUDED)
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=1024)
    parser.add_argument("--calibration", type=int, default=4, help="CCP train photos (each holds every activation: about 2-3 GB at 1024)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/closet-quantized"))
    args = parser.parse_args(argv)
    print(quantize(args.out, args.side, args.calibration))


if __name__ == "__main__":
    main()
