"""PyTorch towers -> ONNX files, each checked numerically against the PyTorch module.

Why not ``optimum.exporters.onnx.main_export``: optimum-onnx (0.1) exports CLIP and SigLIP either
as the joint model (image and text inputs in one graph, logits out) or as towers through its
``clip_vision_model`` / ``siglip_vision_model`` / ``clip-text-with-projection`` configs, whose
outputs are ``last_hidden_state`` + ``pooler_output``. None gives CLIP's *projected* image embedding,
and none gives patch tokens without the class token. So the towers are wrapped
(``export.towers``) to emit exactly the manifest's outputs and exported with the exporter optimum
itself calls (``torch.onnx.export``, TorchScript path, opset 17, dynamic batch), then validated the
way optimum validates: run both on the same inputs, compare every output, and name the one that
differs and by how much.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edge.errors import ExportError

log = logging.getLogger(__name__)

OPSET = 17
# |onnx - torch| must stay within ATOL * max(1, max|torch|) for every output
ATOL = 1e-4


def export_module(
    module: nn.Module,
    sample: dict[str, np.ndarray],
    output_names: tuple[str, ...],
    path: Path,
    what: str,
) -> dict[str, float]:
    """Export ``module`` (inputs named as in ``sample``) to ``path``; return max abs diff per output."""
    inputs = tuple(torch.from_numpy(value) for value in sample.values())
    dynamic_axes = {name: {0: "batch"} for name in (*sample, *output_names)}
    for name, value in sample.items():
        if value.ndim == 2:  # token ids: sequence length varies too
            dynamic_axes[name] = {0: "batch", 1: "sequence"}
    log.info("exporting %s to %s", what, path)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about Python-side shape checks are expected
            torch.onnx.export(
                module, inputs, str(path),
                input_names=list(sample), output_names=list(output_names), dynamic_axes=dynamic_axes,
                opset_version=OPSET, do_constant_folding=True, dynamo=False,
            )
    except Exception as exc:  # the exporter raises many unrelated types; all mean the same to the user
        raise ExportError(f"{what} could not be exported to ONNX: {exc}") from exc
    return check_against_torch(module, path, sample, output_names, what)


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
