"""``--onnx MODEL --features TENSOR[,...]``: a user's own ONNX backbone, cut at mid-level tensors, as an image tower.

Anomaly detection wants mid-level features (PatchCore's layers 2-3, a ViT's later-middle
blocks), not a classifier's last output, and every exporter (anomalib, timm, in-house) names
them differently. So the user names the tensors; the graph is cut there
(``onnx.utils.extract_model``) and given the outputs a bundle needs:

    pixel_values (B, 3, H, W) -> image_embeds (B, C), features_0 (B, C0, h0, w0), features_1 ...

A ViT token tensor (B, P + N, C), class token first (P = 1, or 5 with DINOv2's register tokens), is
laid out on its token grid (B, C, rows, cols), so the board treats it exactly as a CNN's map:
local average, resize to the finest grid, unit length, joined (``edge.vision.patch_features``);
its anomaly map is the token grid. A CNN map (B, C, H, W) is kept as it is. The global embedding
is the last named tensor's class token (ViT) or its average over the map (CNN).
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edge.bundle.manifest import Preprocessing
from edge.errors import ExportError, UsageError
from edge.vision.patch_features import NEIGHBOURHOOD_PX
from export.towers import EMBEDDING_OUTPUT, IMAGE_INPUT

log = logging.getLogger(__name__)

# ImageNet statistics: what timm, torchvision and DINOv2 backbones are trained with
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TOKEN_NEIGHBOURHOOD_PX = 1  # see patch_scoring
TOKEN_TOP_SHARE = 0.01
PREFIX_TOKENS = (1, 5)  # before the patch tokens: the class token, and 4 registers in DINOv2-with-registers
_MIN_OPSET = 13  # the added Slice/Gather/Reshape take their axes as inputs from opset 13


def feature_output(index: int) -> str:
    return f"features_{index}"


@dataclass(frozen=True)
class Feature:
    """One named tensor and how it becomes a (B, C, rows, cols) map."""

    name: str
    layout: Literal["tokens", "map"]
    channels: int
    grid: tuple[int, int]
    prefix_tokens: int = 0  # tokens before the patch tokens (class, registers)


@dataclass(frozen=True)
class OwnModel:
    """The cut model written to disk, and what the manifest says about it."""

    path: Path
    preprocessing: Preprocessing
    features: tuple[Feature, ...]
    embedding_dim: int
    kind: Literal["image-only"] = "image-only"

    @property
    def family(self) -> Literal["transformer", "convnet"]:
        return "transformer" if any(f.layout == "tokens" for f in self.features) else "convnet"

    @property
    def outputs(self) -> tuple[str, ...]:
        return (EMBEDDING_OUTPUT, *(feature_output(i) for i in range(len(self.features))))


def patch_scoring(model: object) -> dict[str, int | float]:
    """How the board scores the patches of ``model`` (manifest ``image_model`` fields).

    ViT tokens are scored by the mean of the worst 1 % of patches, CNN maps by the worst patch; on
    ELPV through ``check`` the settings were within the noise of each other, and only the worst 1 %
    kept the ViT's INT8 patch scores within the gate (docs/performance.md, "Model choice").
    """
    tokens = isinstance(model, OwnModel) and model.family == "transformer"
    return {"patch_neighbourhood_px": TOKEN_NEIGHBOURHOOD_PX if tokens else NEIGHBOURHOOD_PX,
            "patch_top_share": TOKEN_TOP_SHARE if tokens else 0.0}


def parse_features(text: str) -> list[str]:
    """``--features a,b`` -> ["a", "b"]; tensor names may not be empty or repeated."""
    names = [name.strip() for name in text.split(",")]
    if not all(names) or len(set(names)) != len(names):
        raise UsageError(f"--features {text!r}: give distinct tensor names separated by commas")
    return names


def cut(source: Path, features: list[str], target: Path, input_size_px: int | None = None,
        mean: tuple[float, float, float] | None = None, std: tuple[float, float, float] | None = None) -> OwnModel:
    """Cut ``source`` at ``features``, add the bundle's outputs, write ``target``; every user error is named."""
    import onnx

    model = _load(source)
    if max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0) < _MIN_OPSET:
        raise ExportError(f"{source}: opset {_MIN_OPSET} or later is needed; export the model again with a newer opset")
    input_name, size = _image_input(model, source, input_size_px)
    _require_tensors(model, features, source)
    with_inputs = target.with_name("cut_" + target.name)
    try:
        onnx.utils.extract_model(str(source), str(with_inputs), [input_name], features, check_model=False)
    except Exception as exc:  # onnx raises ValueError, KeyError, its own errors on odd graphs
        raise ExportError(f"{source}: the graph cannot be cut at {', '.join(features)}: {exc}") from exc
    cut_model = onnx.load(str(with_inputs))
    shapes = _probe(with_inputs, input_name, size, features, source)
    parts = tuple(_describe(name, shape, size, source) for name, shape in zip(features, shapes, strict=True))
    _add_outputs(cut_model, input_name, parts)
    onnx.save(cut_model, str(target))
    with_inputs.unlink()
    pre = Preprocessing(input_size=size, resize_mode="shortest_edge", resize_px=min(size), crop="center",
                        interpolation="bicubic", mean=mean or IMAGENET_MEAN, std=std or IMAGENET_STD)
    log.info("cut %s at %s: %s", source.name, ", ".join(features),
             ", ".join(f"{p.layout} {p.channels}x{p.grid[0]}x{p.grid[1]}" for p in parts))
    return OwnModel(target, pre, parts, parts[-1].channels)


def _load(source: Path) -> Any:
    import onnx

    if not source.is_file():
        raise ExportError(f"--onnx {source}: no such file")
    try:
        return onnx.load(str(source))
    except Exception as exc:  # a truncated or non-ONNX file raises DecodeError and others
        raise ExportError(f"--onnx {source} is not a readable ONNX model: {exc}") from exc


def _image_input(model: object, source: Path, input_size_px: int | None) -> tuple[str, tuple[int, int]]:
    """The one image input (B, 3, H, W) and its (H, W): fixed by the model or given by --input-size."""
    graph = model.graph  # type: ignore[attr-defined]
    weights = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]
    if len(inputs) != 1:
        raise ExportError(f"{source}: an image backbone has one input; this model has {[i.name for i in inputs]}")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or dims[1] not in (3, None):
        raise ExportError(f"{source}: input '{inputs[0].name}' must be (batch, 3, height, width); it is {dims}")
    height, width = dims[2], dims[3]
    if input_size_px is not None:
        if (height, width) not in ((None, None), (input_size_px, input_size_px)):
            raise UsageError(f"--input-size {input_size_px} does not fit {source}: its input is fixed "
                             f"at {height}x{width}")
        return inputs[0].name, (input_size_px, input_size_px)
    if height is None or width is None:
        raise UsageError(f"{source}: input '{inputs[0].name}' has dynamic height/width; give --input-size PX")
    return inputs[0].name, (height, width)


def _require_tensors(model: object, features: list[str], source: Path) -> None:
    """Each name must be a tensor some node computes; suggest the closest names when it is not."""
    known = [o for node in model.graph.node for o in node.output if o]  # type: ignore[attr-defined]
    present = set(known)
    for name in features:
        if name not in present:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise UsageError(f"--features: {source} has no tensor {name!r}{hint}")


def _probe(path: Path, input_name: str, size: tuple[int, int], names: list[str], source: Path) -> list[tuple[int, ...]]:
    """Run the cut model at batch 1 and 2: the real output shapes, and proof the batch axis is free."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        one = session.run(names, {input_name: np.zeros((1, 3, *size), np.float32)})
        two = session.run(names, {input_name: np.zeros((2, 3, *size), np.float32)})
    except Exception as exc:  # onnxruntime's errors carry no stable type
        raise ExportError(f"{source}: the cut model does not run at batch 1 and 2 ({exc}); the bundle needs a "
                          "dynamic batch axis: export the model again with dynamic_axes on batch") from exc
    for name, a, b in zip(names, one, two, strict=True):
        if b.shape != (2, *a.shape[1:]) or a.shape[0] != 1:
            raise ExportError(f"{source}: tensor {name!r} has shape {a.shape} at batch 1 and {b.shape} at batch 2; "
                              "its first axis must be the batch")
    return [tuple(a.shape) for a in one]


def _describe(name: str, shape: tuple[int, ...], size: tuple[int, int], source: Path) -> Feature:
    if len(shape) == 4:  # (B, C, H, W)
        return Feature(name, "map", shape[1], (shape[2], shape[3]))
    if len(shape) != 3:
        raise UsageError(f"--features: tensor {name!r} of {source} has rank {len(shape)} {shape}; give ViT tokens "
                         "(batch, 1 + patches, channels) or a CNN map (batch, channels, height, width)")
    tokens, channels = shape[1], shape[2]
    for prefix in PREFIX_TOKENS:
        grid = _grid(tokens - prefix, size)
        if grid is not None:
            return Feature(name, "tokens", channels, grid, prefix)
    raise UsageError(f"--features: tensor {name!r} of {source} has {tokens} tokens, which are not a class token "
                     f"(and 4 registers) followed by a grid of patches over a {size[0]}x{size[1]} input")


def _grid(patches: int, size: tuple[int, int]) -> tuple[int, int] | None:
    """(rows, cols) when ``patches`` tile the input in square patches, else None."""
    height, width = size
    rows = round(float(np.sqrt(patches * height / width)))
    if rows < 1 or patches % rows:
        return None
    cols = patches // rows
    return (rows, cols) if height * cols == width * rows else None


def _add_outputs(model: object, input_name: str, parts: tuple[Feature, ...]) -> None:
    """Replace the cut model's outputs with image_embeds and features_i, and name its input pixel_values."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph  # type: ignore[attr-defined]
    for node in graph.node:
        node.input[:] = [IMAGE_INPUT if name == input_name else name for name in node.input]
    graph.input[0].name = IMAGE_INPUT
    del graph.output[:]

    def const(name: str, values: list[int] | int) -> str:
        graph.initializer.append(numpy_helper.from_array(np.asarray(values, np.int64), name))
        return name

    for index, part in enumerate(parts):
        out, rows, cols = feature_output(index), *part.grid
        if part.layout == "tokens":
            patches, grid = f"{out}/patches", f"{out}/channels_first"
            graph.node.extend([
                helper.make_node("Slice", [part.name, const(f"{out}/start", [part.prefix_tokens]),
                                           const(f"{out}/end", [np.iinfo(np.int64).max]),
                                           const(f"{out}/axis", [1])], [patches]),  # (B, N, C)
                helper.make_node("Transpose", [patches], [grid], perm=[0, 2, 1]),  # (B, C, N)
                helper.make_node("Reshape", [grid, const(f"{out}/shape", [0, part.channels, rows, cols])], [out]),
            ])
        else:
            graph.node.append(helper.make_node("Identity", [part.name], [out]))
        graph.output.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", part.channels, rows, cols]))
    last = parts[-1]
    if last.layout == "tokens":  # the class token, first
        embed = helper.make_node("Gather", [last.name, const("embedding/class_token", 0)], [EMBEDDING_OUTPUT], axis=1)
    else:
        graph.node.append(helper.make_node("GlobalAveragePool", [last.name], ["embedding/pooled"]))
        embed = helper.make_node("Flatten", ["embedding/pooled"], [EMBEDDING_OUTPUT], axis=1)
    graph.node.append(embed)
    graph.output.insert(0, helper.make_tensor_value_info(EMBEDDING_OUTPUT, TensorProto.FLOAT, ["batch", last.channels]))
