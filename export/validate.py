"""The accuracy gate: run FP32 and INT8 side by side on held-back images and compare what the board uses.

Figures: cosine similarity of the image embeddings (mean and worst), top-1 agreement of the
decision the board makes from them, the largest change of any label probability, and the rank
correlation of the normal-baseline heads' scores (``export.task_gate``). The decision is the best
label (image-text bundles), else each image's nearest neighbour among the other held-back images.

Which figures gate depends on what the board's heads use: label agreement and embedding cosine
for an image-text bundle (its zero-shot head reads both); for an image-only bundle, whose heads
only rank frames by distance to normal, the rank correlation of those distances. An ImageNet
classifier the model keeps is not consulted: its classes mean nothing for a machine part.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.bundle import Labels, Validation
from edge.errors import ExportError
from edge.vision.encoder import l2_normalise
from edge.vision.patch_features import patch_features
from edge.vision.zero_shot import label_probabilities
from export.images import LabelledSet
from export.task_gate import labelled_auroc, score_rank_correlation

log = logging.getLogger(__name__)

_BATCH = 8
_MIN_RANKED_IMAGES = 5  # fewer held-back images give no rank correlation worth gating on


@dataclass(frozen=True)
class Gate:
    min_cosine: float = 0.98  # mean FP32/INT8 embedding cosine
    min_top1: float = 0.97  # fraction of images whose top-1 decision agrees
    min_rank_correlation: float = 0.95  # Spearman of each baseline head's FP32 and INT8 scores
    max_auroc_drop: float = 0.01  # with a labelled validation folder: FP32 AUROC minus INT8 AUROC

    def thresholds(self, image_only: bool, ranked: bool, labelled: bool = False) -> dict[str, float]:
        """The figures that decide, with their limits: the ones the bundle's heads depend on
        (an image-only bundle with too few held-back images to rank falls back to the cosine)."""
        if image_only:
            ranked_limit = {"score_rank_correlation": self.min_rank_correlation}
            limits = ranked_limit if ranked else {"cosine_mean": self.min_cosine}
        else:
            limits = {"cosine_mean": self.min_cosine, "top1_agreement": self.min_top1}
        return {**limits, "auroc_drop": self.max_auroc_drop} if labelled else limits


@dataclass(frozen=True)
class LabelHead:
    """The board's own zero-shot head (``edge.vision.zero_shot``), so the gate measures what it runs."""

    labels: Labels
    embeddings: np.ndarray  # (L, D) float32, L2-normalised

    def probabilities(self, image_embeds: np.ndarray) -> np.ndarray:
        """(B, D) raw image embeddings -> (B, L) label probabilities."""
        return np.stack([label_probabilities(e, self.embeddings, self.labels) for e in l2_normalise(image_embeds)])


def run_onnx(path: Path, input_name: str, outputs: list[str], images: Iterable[np.ndarray]) -> list[np.ndarray]:
    """Run ``outputs`` of an ONNX image model over (1, 3, H, W) images in small batches."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batches: list[list[np.ndarray]] = []
    pending: list[np.ndarray] = []
    for image in images:
        pending.append(image)
        if len(pending) == _BATCH:
            batches.append(session.run(outputs, {input_name: np.concatenate(pending)}))
            pending = []
    if pending:
        batches.append(session.run(outputs, {input_name: np.concatenate(pending)}))
    return [np.concatenate([b[i] for b in batches]) for i in range(len(outputs))]


def run_text(path: Path, input_name: str, output: str, token_ids: np.ndarray) -> np.ndarray:
    """(P, L) int64 token ids -> (P, D) text embeddings from an ONNX text model."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run([output], {input_name: token_ids})[0])


def compare(
    fp32: Path,
    int8: Path,
    input_name: str,
    embedding_output: str,
    images: list[np.ndarray],
    gate: Gate,
    labels: LabelHead | None = None,
    patch_output: str | None = None,
    feature_outputs: tuple[str, ...] = (),
    progress: Callable[[Iterable[np.ndarray]], Iterable[np.ndarray]] = iter,
    labelled: LabelledSet | None = None,
) -> Validation:
    """Measure INT8 against FP32 on ``images`` and decide the gate."""
    if not images:
        raise ExportError("no held-back images are left to validate INT8 against FP32")
    patch_names = list(feature_outputs) or ([patch_output] if patch_output else [])
    outputs = [embedding_output, *patch_names]
    reference = run_onnx(fp32, input_name, outputs, progress(images))
    candidate = run_onnx(int8, input_name, outputs, images)
    if not all(np.isfinite(c).all() for c in candidate):
        raise ExportError("the INT8 model produced NaN or infinite values on the validation images")
    cosine = np.sum(l2_normalise(reference[0]) * l2_normalise(candidate[0]), axis=-1)  # (B,)
    top1: float | None
    shift: float | None = None
    if labels is not None:
        p_ref, p_new = labels.probabilities(reference[0]), labels.probabilities(candidate[0])
        top1 = float(np.mean(p_ref.argmax(-1) == p_new.argmax(-1)))
        shift = float(np.max(np.abs(p_ref - p_new)))
    else:
        top1 = _neighbour_agreement(reference[0], candidate[0])
    ranks: dict[str, float] = {}
    if len(images) >= _MIN_RANKED_IMAGES:
        ranks = score_rank_correlation(_head_inputs(reference, bool(feature_outputs)),
                                       _head_inputs(candidate, bool(feature_outputs)))
    cosine_mean = float(cosine.mean())
    image_only = labels is None
    if image_only and ranks:
        passed = min(ranks.values()) >= gate.min_rank_correlation
    elif image_only:
        log.warning("only %d held-back images: too few to rank, so INT8 is gated on embedding cosine; "
                    "give --calibration at least %d images for the task gate", len(images), 4 * _MIN_RANKED_IMAGES)
        passed = cosine_mean >= gate.min_cosine
    else:
        passed = cosine_mean >= gate.min_cosine and (top1 is None or top1 >= gate.min_top1)
    task: dict[str, float] = {}
    if labelled is not None:
        for name, model in (("fp32", fp32), ("int8", int8)):
            sides = [_head_inputs(run_onnx(model, input_name, outputs, side), bool(feature_outputs))
                     for side in (labelled.good, labelled.defect)]
            task[name] = labelled_auroc(*sides)
        passed = passed and task["int8"] >= task["fp32"] - gate.max_auroc_drop
    return Validation(
        images=len(images), cosine_mean=cosine_mean, cosine_min=float(cosine.min()), top1_agreement=top1,
        max_probability_shift=shift, score_rank_correlation=ranks, auroc_fp32=task.get("fp32"),
        auroc_int8=task.get("int8"), thresholds=gate.thresholds(image_only, bool(ranks), labelled is not None),
        passed=passed,
    )


def _head_inputs(outputs: list[np.ndarray], feature_maps: bool) -> dict[str, np.ndarray]:
    """Raw model outputs [embeds, patches or maps...] -> what the baseline heads read, as the board builds it."""
    inputs = {"embeddings": outputs[0]}
    if feature_maps:
        inputs["patches"] = patch_features(outputs[1:])[0]
    elif len(outputs) > 1:
        inputs["patches"] = l2_normalise(outputs[1])
    return inputs


def _neighbour_agreement(reference: np.ndarray, candidate: np.ndarray) -> float | None:
    """Fraction of images whose nearest other image is the same in FP32 and INT8 (None below 2 images)."""
    if len(reference) < 2:
        return None

    def nearest(x: np.ndarray) -> np.ndarray:
        sim = l2_normalise(x) @ l2_normalise(x).T
        np.fill_diagonal(sim, -np.inf)
        return sim.argmax(-1)

    return float(np.mean(nearest(reference) == nearest(candidate)))


def summary(validation: Validation) -> str:
    """'25 held-back images: cosine mean 0.9899 (min 0.9628), top-1 agreement 92.0%'."""
    top1 = f", top-1 agreement {validation.top1_agreement:.1%}" if validation.top1_agreement is not None else ""
    ranks = "".join(f", {head} score rank correlation {value:.3f}"
                    for head, value in validation.score_rank_correlation.items())
    task = ("" if validation.auroc_int8 is None or validation.auroc_fp32 is None else
            f", labelled AUROC INT8 {validation.auroc_int8:.3f} vs FP32 {validation.auroc_fp32:.3f}")
    return (f"{validation.images} held-back images: cosine mean {validation.cosine_mean:.4f} "
            f"(min {validation.cosine_min:.4f}){top1}{ranks}{task}")


def require_pass(validation: Validation, mode: str) -> None:
    """A failed gate is an ExportError that gives the figures and what to try for this ``mode``."""
    if validation.passed:
        return
    limits = ", ".join(f"{k} >= {v:g}" for k, v in validation.thresholds.items())
    advice = ("Try more calibration images, --calibration-method entropy or percentile, or --quantize dynamic"
              if mode == "static" else
              "Give --calibration DIR with 20 or more of your own frames for static INT8 (convolutional "
              "networks need it), or --quantize none")
    raise ExportError(f"INT8 failed the accuracy gate on {summary(validation)}; required {limits}. {advice}")
