"""FP32 ONNX -> INT8 ONNX with onnxruntime: graph pre-processing, static QDQ or dynamic quantization.

Pre-processing follows onnxruntime's guide: transformer graphs first go through the transformer
optimizer (LayerNorm and GELU fusions) with attention fusion *off*, so every projection stays a
plain MatMul the QDQ quantizer can reach; then ``quant_pre_process`` runs shape inference so the
quantizer knows every tensor's type.

What stays float was measured, not guessed (``benchmarks/export_int8.py`` for a ViT-B/32 CLIP
image tower, ``benchmarks/int8_sensitivity.py`` for EfficientNet-Lite0; figures in
docs/export.md). In QDQ mode Softmax, GELU and residual Add have no quantized kernel and stay
float anyway. Quantizing LayerNormalization made ViT-B/32 faster but dropped embedding cosine
from 0.9998 to 0.89, so it stays float. Quantizing the activation x activation attention MatMuls
(Q·Kᵀ, softmax·V) gained no accuracy and ran slower, so transformer towers quantize weight
MatMuls only (``MatMulConstBOnly``). The layer reading the image (stem / patch embedding) stays
float: on EfficientNet-Lite0 it alone cost 0.019 cosine. Activations are uint8 (U8S8): on this
AVX-512 VNNI CPU, int8 activations (S8S8) ran at 0.96x FP32, uint8 at ~2x. EfficientNet-Lite0 is
the exception: plain INT8 flipped the ImageNet top-1 class of 14% of photos, so when that misses the
gate it falls back to weight-only quantization (``quantize_weights``): int8 weights, int16 in its small
layers (see ``_CONVNET_WIDE_WEIGHT_PARAMS``), dequantized to float once when the board loads the model.

Longer than most modules (about 380 lines) on purpose: the three recipes (static, weight-only,
dynamic) share the graph pre-processing and the list of what stays float, which were measured together.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from edge.errors import ExportError

if TYPE_CHECKING:
    from onnx import NodeProto

log = logging.getLogger(__name__)

Method = Literal["minmax", "entropy", "percentile"]
Family = Literal["transformer", "convnet"]

# Op types the quantizer may touch, per model family (see the module docstring for why).
_QUANTIZED_OPS: dict[Family, list[str]] = {
    "transformer": ["MatMul", "Gemm", "Conv"],
    # Clip/Relu must be listed: the quantizer then folds ReLU6 into the Conv's output range (0..6)
    # instead of calibrating the Conv's raw output, which BN folding can push to hundreds.
    "convnet": ["Conv", "Gemm", "Clip", "Relu", "MatMul", "GlobalAveragePool", "AveragePool", "Flatten"],
}
# Compute ops worth naming when they stay float (shape plumbing is not).
_PLUMBING = {
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "Shape", "Constant", "ConstantOfShape",
    "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Gather", "Slice", "Concat", "Cast", "Expand",
    "Identity", "Range", "Equal", "Where", "ArgMax", "Split",
}


# INT8 kernels' weights use 7 of their 8 bits (onnxruntime's reduce_range). x86 CPUs without VNNI
# (AVX2 only) multiply uint8 activations by int8 weights with VPMADDUBSW, whose int16 pair sums
# saturate at full range: there, tiny CLIP/SigLIP towers fell to 0.91 image and 0.81 label-embedding
# cosine against FP32; with 7-bit weights they measured 0.999 on the same CPU. A bundle must give
# the same answers on every board and on the workstation running its accuracy gate, so every
# static and dynamic INT8 model takes the 1-bit loss (ARM and VNNI CPUs never saturate).
REDUCED_RANGE_WEIGHTS = True

_FLOAT = 1  # onnx.TensorProto.FLOAT: type of tensors shape inference could not type (contrib ops)


@dataclass(frozen=True)
class Result:
    path: Path
    ops_excluded: list[str]  # op types with no quantized node, e.g. LayerNormalization, Softmax


def preprocess(src: Path, dst: Path, family: Family) -> None:
    """Fuse (transformers only) and shape-infer ``src`` into ``dst``, ready for the quantizer."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        source = src
        if family == "transformer":
            from onnxruntime.transformers.fusion_options import FusionOptions
            from onnxruntime.transformers.optimizer import optimize_model

            # num_heads/hidden_size only matter to attention fusion, which is off: hush its warning
            logging.getLogger("onnxruntime.transformers.optimizer").setLevel(logging.ERROR)
            options = FusionOptions("vit")
            options.enable_attention = False  # QDQ has no fused-attention kernel; keep MatMuls visible
            # SkipLayerNormalization fed by dequantized MatMuls profiled at 11% of INT8 ViT-B/32 time;
            # plain Add + LayerNormalization ran 10% faster in total (benchmarks/export_int8.py)
            options.enable_skip_layer_norm = False
            options.enable_bias_skip_layer_norm = False
            optimized = optimize_model(str(src), model_type="vit", optimization_options=options, opt_level=0)
            source = Path(tmp) / "fused.onnx"
            optimized.save_model_to_file(str(source))
        # When symbolic shape inference gives up (SigLIP's attention-pooling head) onnxruntime saves its
        # scratch model, sym_shape_infer_temp.onnx plus a <uuid>.data file, into the current directory:
        # run it from our own temp folder so nothing lands in the user's working directory.
        source, target = source.resolve(), dst.resolve()
        with _working_directory(Path(tmp)):
            try:
                quant_pre_process(str(source), str(target), skip_symbolic_shape=False)
            except Exception as exc:  # shape inference raises assorted types on odd graphs
                log.info("symbolic shape inference failed (%s); typing tensors with onnxruntime instead", exc)
                quant_pre_process(str(source), str(target), skip_symbolic_shape=True)
    _add_missing_types(dst)


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    """``contextlib.chdir`` for Python 3.10."""
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _add_missing_types(path: Path) -> None:
    """Give every untyped intermediate tensor the element type onnxruntime infers for it.

    ONNX shape inference cannot see through contrib ops (FastGelu, SkipLayerNormalization), and
    symbolic inference trips over some reshapes (SigLIP's attention-pooling head); the quantizer
    skips any tensor whose type it does not know, silently leaving its MatMul in float.
    """
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    graph = model.graph
    known = {v.name for v in (*graph.value_info, *graph.output, *graph.input, *graph.initializer)}
    missing = [o for n in graph.node for o in n.output if o and o not in known]
    if not missing:
        return
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(onnx.ValueInfoProto(name=name) for name in missing)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    types = {o.name: o.type for o in session.get_outputs()}
    for name in missing:
        kind = types.get(name, "")
        if kind.startswith("tensor("):
            elem = getattr(onnx.TensorProto, kind[7:-1].upper(), None)
            if elem is not None:
                graph.value_info.append(onnx.helper.make_tensor_value_info(name, elem, None))
    onnx.save(model, str(path))


class _Reader:
    """onnxruntime CalibrationDataReader over a list of (1, ...) inputs."""

    def __init__(self, input_name: str, batches: Iterable[np.ndarray]) -> None:
        self._name = input_name
        self._batches: Iterator[np.ndarray] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {self._name: batch}


@dataclass(frozen=True)
class Recipe:
    """What static quantization touches; ``recipes(family)`` lists the measured choices."""

    op_types: tuple[str, ...]
    weight_matmuls_only: bool  # MatMulConstBOnly: leave activation x activation MatMuls (attention) float
    input_layer_float: bool  # keep the stem / patch-embedding layer float
    # uint8 activations (U8S8): the fast VNNI path (S8S8 measured 0.96x FP32 on ViT-B/32, U8S8 ~2x)
    unsigned_activations: bool = True
    # 16 bits (here or in wide_weight_params) makes onnxruntime raise the graph to opset 21: onnxruntime >= 1.18
    activation_bits: Literal[8, 16] = 8
    # the smallest quantized layers, up to this many weights in all, keep int16 weights (the rest int8)
    wide_weight_params: int = 0
    # weights only (``quantize_weights``): activations stay float, no calibration; activation_bits is unused
    weight_only: bool = False


# EfficientNet-Lite0's INT8 error is spread over every layer, not a few (benchmarks/int8_sensitivity.py).
# Weight-only quantization with int16 weights for its 40 smallest layers (1.2M of 4.7M weights) and int8 for
# the rest took FP32/INT8 top-1 agreement from 86% to 100% on photos and 89% to 98% on ELPV cells, at 33% of
# the FP32 size; the board folds the weights back to float at load (session.disable_quant_qdq), so it runs
# at FP32 speed (benchmarks/int8_agreement.py). So it is the fallback, taken only when plain INT8 (2.3x
# faster than FP32) fails the accuracy gate.
_CONVNET_WIDE_WEIGHT_PARAMS = 1_300_000


def recipes(family: Family) -> list[Recipe]:
    """The recipes to try, fastest first; the export keeps the first that passes the accuracy gate."""
    if family == "convnet":
        fast = Recipe(tuple(_QUANTIZED_OPS[family]), weight_matmuls_only=False, input_layer_float=True)
        precise = replace(fast, weight_only=True, wide_weight_params=_CONVNET_WIDE_WEIGHT_PARAMS)
        return [fast, precise]
    return [Recipe(tuple(_QUANTIZED_OPS[family]), weight_matmuls_only=True, input_layer_float=True)]


def quantize_static(
    fp32: Path,
    out: Path,
    input_name: str,
    calibration: list[np.ndarray],
    method: Method,
    family: Family,
    progress: Iterable[np.ndarray] | None = None,
    how: Recipe | None = None,
) -> Result:
    """Static QDQ INT8: per-channel symmetric int8 weights, 8-bit activations calibrated on ``calibration``.

    ``progress`` may wrap ``calibration`` (a tqdm bar) so the caller sees calibration advance. A
    ``weight_only`` recipe goes to :func:`quantize_weights` and needs no calibration.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static as ort_static

    how = how or recipes(family)[0]
    if how.weight_only:
        return quantize_weights(fp32, out, input_name, family, how)
    if not calibration:
        raise ExportError("static quantization needs at least one calibration image")
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    extra: dict[str, object] = {
        "MatMulConstBOnly": how.weight_matmuls_only, "WeightSymmetric": True, "ActivationSymmetric": False,
        "DefaultTensorType": _FLOAT,
    }
    if method == "percentile":
        extra["CalibPercentile"] = 99.99
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        preprocess(fp32, prepared, family)
        try:
            excluded = _input_layers(prepared, input_name) if how.input_layer_float else []
            if how.wide_weight_params:
                extra["TensorQuantOverrides"] = {
                    weight: [{"quant_type": QuantType.QInt16}]
                    for weight in _smallest_weights(prepared, how.op_types, excluded, how.wide_weight_params)
                }
            unsigned = how.unsigned_activations
            ort_static(
                str(prepared), str(out), _Reader(input_name, progress if progress is not None else calibration),
                nodes_to_exclude=excluded, quant_format=QuantFormat.QDQ, per_channel=True,
                reduce_range=REDUCED_RANGE_WEIGHTS,
                activation_type=(QuantType.QUInt16 if unsigned else QuantType.QInt16) if how.activation_bits == 16
                else (QuantType.QUInt8 if unsigned else QuantType.QInt8),
                weight_type=QuantType.QInt8, op_types_to_quantize=list(how.op_types), calibrate_method=methods[method],
                extra_options=extra,
            )
        except (ValueError, RuntimeError, MemoryError) as exc:
            raise ExportError(f"static INT8 quantization of {fp32.name} failed: {exc}") from exc
    return Result(out, _float_ops(out))


def quantize_weights(fp32: Path, out: Path, input_name: str, family: Family, how: Recipe) -> Result:
    """Weight-only: per-channel symmetric int8 weights (int16 in the smallest layers), activations float.

    Each weight becomes an integer initializer read through a DequantizeLinear node. Nothing depends on
    activation ranges, so no calibration is needed; a session with ``session.disable_quant_qdq=1``
    folds the DequantizeLinear nodes into float weights once at load and then runs plain float kernels.
    """
    import onnx
    from onnx import helper, numpy_helper, version_converter

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        preprocess(fp32, prepared, family)
        excluded = _input_layers(prepared, input_name) if how.input_layer_float else []
        wide = set(_smallest_weights(prepared, how.op_types, excluded, how.wide_weight_params))
        model = onnx.load(str(prepared))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if wide and opset < 21:  # int16 DequantizeLinear is opset 21
        model = version_converter.convert_version(model, 21)
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    axes: dict[str, int] = {}  # weight initializer -> its output-channel axis
    for node in graph.node:
        if (node.op_type in ("Conv", "Gemm", "MatMul") and node.op_type in how.op_types and node.name not in excluded
                and len(node.input) > 1 and node.input[1] in initializers):
            axes.setdefault(node.input[1], _channel_axis(node, len(initializers[node.input[1]].dims)))
    dequantize = []
    for name, axis in axes.items():
        weights = numpy_helper.to_array(initializers[name]).astype(np.float32)
        dtype, q_max = (np.int16, 32767) if name in wide else (np.int8, 127)
        scale = np.abs(weights).max(axis=tuple(a for a in range(weights.ndim) if a != axis)) / q_max  # (C,)
        scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
        shape = [-1 if a == axis else 1 for a in range(weights.ndim)]
        quantized = np.clip(np.round(weights / scale.reshape(shape)), -q_max, q_max).astype(dtype)
        graph.initializer.remove(initializers[name])
        graph.initializer.extend([
            numpy_helper.from_array(quantized, f"{name}_quantized"), numpy_helper.from_array(scale, f"{name}_scale"),
            numpy_helper.from_array(np.zeros_like(scale, dtype=dtype), f"{name}_zero_point"),
        ])
        dequantize.append(helper.make_node("DequantizeLinear", [f"{name}_quantized", f"{name}_scale",
                                                                f"{name}_zero_point"], [name], axis=axis,
                                           name=f"{name}_DequantizeLinear"))
    nodes = dequantize + list(graph.node)  # constants first: the graph stays topologically sorted
    del graph.node[:]
    graph.node.extend(nodes)
    try:
        onnx.checker.check_model(model)
        onnx.save(model, str(out))
    except (onnx.checker.ValidationError, OSError) as exc:
        raise ExportError(f"weight-only quantization of {fp32.name} failed: {exc}") from exc
    return Result(out, _float_ops(out))


def _channel_axis(node: NodeProto, rank: int) -> int:
    """The output-channel axis of a layer's weight: Conv (O, I, kH, kW), Gemm (N, K) if transB else (K, N)."""
    if node.op_type == "Conv":
        return 0
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    return rank - 1  # MatMul: (..., K, N)


def quantize_dynamic(fp32: Path, out: Path, family: Family) -> Result:
    """Dynamic INT8: int8 weights, activations quantized per batch at run time (no calibration images)."""
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization import quantize_dynamic as ort_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        preprocess(fp32, prepared, family)
        try:
            ort_dynamic(
                str(prepared), str(out), per_channel=True, reduce_range=REDUCED_RANGE_WEIGHTS,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["MatMul", "Gemm", "Conv", "Gather"],
                extra_options={"MatMulConstBOnly": True, "DefaultTensorType": _FLOAT},
            )
        except (ValueError, RuntimeError, MemoryError) as exc:
            raise ExportError(f"dynamic INT8 quantization of {fp32.name} failed: {exc}") from exc
    return Result(out, _float_ops(out))


def _input_layers(path: Path, input_name: str) -> list[str]:
    """Nodes reading the image itself (the stem / patch-embedding conv): they stay float.

    Measured on EfficientNet-Lite0 (per-node sensitivity, benchmarks/int8_sensitivity.py): its BN-folded
    stem conv alone cost 0.019 of embedding cosine, ten times the next layer, for ~2% of the FLOPs.
    """
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [n.name for n in graph.node if input_name in n.input and n.op_type in ("Conv", "MatMul", "Gemm")]


def _smallest_weights(path: Path, op_types: Iterable[str], excluded: list[str], budget: int) -> list[str]:
    """Weight initializers of the smallest quantized layers, smallest first, ``budget`` weights in all."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    sizes = {i.name: int(np.prod(i.dims)) for i in graph.initializer}
    weights = sorted({n.input[1] for n in graph.node if n.op_type in op_types and n.name not in excluded
                      and n.op_type in ("Conv", "Gemm", "MatMul") and len(n.input) > 1 and n.input[1] in sizes},
                     key=lambda name: (sizes[name], name))
    chosen: list[str] = []
    for name in weights:
        if sizes[name] > budget:
            break
        chosen.append(name)
        budget -= sizes[name]
    return chosen


def _float_ops(int8: Path) -> list[str]:
    """Compute op types of which no node runs in INT8: every input dequantized (QDQ) or an integer kernel."""
    import onnx

    graph = onnx.load(str(int8), load_external_data=False).graph
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    quantized = {n.op_type for n in graph.node if n.input and all(i in dequantized for i in n.input if i)}
    integer = {n.op_type for n in graph.node if n.op_type.startswith(("QLinear", "MatMulInteger", "ConvInteger"))}
    return sorted({n.op_type for n in graph.node} - quantized - integer - _PLUMBING)
