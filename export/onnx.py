"""PyTorch towers -> ONNX files, each checked numerically against the PyTorch module.

CLIP, SigLIP and DINOv2 towers go through optimum-onnx's exporter (``optimum.exporters.onnx.export``):
optimum generates the tracing inputs from the checkpoint's config, patches the model for export,
runs ``torch.onnx.export`` (TorchScript path) and fixes dynamic axes. Its stock configs do not fit
the bundle: the joint CLIP/SigLIP config needs image and text inputs in one graph, the vision-tower
configs emit ``last_hidden_state`` + ``pooler_output`` (no CLIP projection, class token included),
and the text configs add ``last_hidden_state``. So the towers are wrapped (``export.towers``) to
compute exactly the manifest's outputs, and exported with the custom OnnxConfigs below that declare
them. What is ours: the wrappers, the declared inputs/outputs and axes, and the check below.
EfficientNet-Lite0 is not a transformers model and goes to ``torch.onnx.export`` directly. Both
paths use opset 17 and a dynamic batch (and sequence, for token ids).

Every export is then checked here rather than with optimum's ``validate_model_outputs``: one check
for all three sources, run on the caller's real inputs (optimum's random token ids almost never
contain the EOS token CLIP pools at), with a tolerance scaled to the output's magnitude; the error
names the output that differs and by how much.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from optimum.exporters.onnx import export as optimum_export
from optimum.exporters.onnx.model_configs import CLIPTextWithProjectionOnnxConfig, CLIPVisionModelOnnxConfig
from torch import nn

from edge.errors import ExportError
from export.towers import IMAGE_INPUT, HFTower

log = logging.getLogger(__name__)

OPSET = 17
# |onnx - torch| must stay within ATOL * max(1, max|torch|) for every output
ATOL = 1e-4

Axes = dict[str, dict[int, str]]


class _TowerIO:
    """Declares exactly the given inputs and outputs with their dynamic axes, instead of the stock config's."""

    def __init__(self, config: Any, inputs: Axes, outputs: Axes) -> None:
        self._inputs, self._outputs = inputs, outputs
        super().__init__(config, task="feature-extraction")  # type: ignore[call-arg]

    @property
    def inputs(self) -> Axes:
        return self._inputs

    @property
    def outputs(self) -> Axes:
        return self._outputs


# optimum's SigLIP tower configs are these CLIP ones unchanged: same dummy inputs, same normalised config
class _ImageTowerConfig(_TowerIO, CLIPVisionModelOnnxConfig):
    pass


class _TextTowerConfig(_TowerIO, CLIPTextWithProjectionOnnxConfig):
    pass


def export_module(
    module: nn.Module,
    sample: dict[str, np.ndarray],
    output_names: tuple[str, ...],
    path: Path,
    what: str,
) -> dict[str, float]:
    """Export ``module`` (inputs named as in ``sample``) to ``path``; return max abs diff per output."""
    inputs: Axes = {name: {0: "batch"} for name in sample}
    for name, value in sample.items():
        if value.ndim == 2:  # token ids: sequence length varies too
            inputs[name] = {0: "batch", 1: "sequence"}
    outputs: Axes = {name: {0: "batch"} for name in output_names}
    log.info("exporting %s to %s", what, path)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about Python-side shape checks are expected
            if isinstance(module, HFTower):
                _export_with_optimum(module, sample, inputs, outputs, path)
            else:
                torch.onnx.export(
                    module, tuple(torch.from_numpy(value) for value in sample.values()), str(path),
                    input_names=list(sample), output_names=list(output_names), dynamic_axes=inputs | outputs,
                    opset_version=OPSET, do_constant_folding=True, dynamo=False,
                )
    except Exception as exc:  # the exporters raise many unrelated types; all mean the same to the user
        raise ExportError(f"{what} could not be exported to ONNX: {exc}") from exc
    return check_against_torch(module, path, sample, output_names, what)


def _export_with_optimum(module: HFTower, sample: dict[str, np.ndarray], inputs: Axes, outputs: Axes,
                         path: Path) -> None:
    """optimum traces with dummy inputs it generates from the config, shaped like ``sample``."""
    config_class = _ImageTowerConfig if IMAGE_INPUT in sample else _TextTowerConfig
    first = next(iter(sample.values()))  # (B, 3, H, W) pixels or (B, L) token ids
    shapes = {"batch_size": first.shape[0]}
    if first.ndim == 2:
        shapes["sequence_length"] = first.shape[1]
    optimum_export(module, config_class(module.config, inputs, outputs), path, opset=OPSET, input_shapes=shapes)


def run_torch(module: nn.Module, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    with torch.no_grad():
        outputs = module(*(torch.from_numpy(v) for v in feeds.values()))
    if isinstance(outputs, torch.Tensor):
        outputs = (outputs,)
    return [o.numpy() for o in outputs]


def check_against_torch(
    module: nn.Module, path: Path, feeds: dict[str, np.ndarray], output_names: tuple[str, ...], what: str
) -> dict[str, float]:
    """Compare every ONNX output with PyTorch's; the error names the output and the difference."""
    import onnxruntime as ort

    expected = run_torch(module, feeds)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    actual = session.run(list(output_names), feeds)
    diffs: dict[str, float] = {}
    for name, want, got in zip(output_names, expected, actual, strict=True):
        if want.shape != got.shape:
            raise ExportError(f"ONNX {what}: output '{name}' has shape {got.shape}, PyTorch gives {want.shape}")
        diff = float(np.max(np.abs(want - got))) if want.size else 0.0
        tolerance = ATOL * max(1.0, float(np.max(np.abs(want))) if want.size else 1.0)
        if not diff <= tolerance:  # also catches NaN
            raise ExportError(
                f"ONNX {what} does not match PyTorch: output '{name}' differs by up to {diff:.2e} "
                f"(tolerance {tolerance:.1e})"
            )
        diffs[name] = diff
    log.info("ONNX %s matches PyTorch: %s", what, ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()))
    return diffs
