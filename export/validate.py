"""The accuracy gate: run FP32 and INT8 side by side on the user's images and compare what the board uses.

Figures: cosine similarity of the image embeddings (mean and worst), top-1 agreement of the
decision the board makes from them, the largest change of any label probability, and the rank
correlation of the normal-baseline heads' scores (``export.task_gate``). The decision is the best
label (image-text bundles), else each image's nearest neighbour among the other images.

Which figures gate depends on what the board's heads use: label agreement and embedding cosine
for an image-text bundle (its zero-shot head reads both); for an image-only bundle, whose heads
only rank frames by distance to normal, the rank correlation of those distances, on every image of
the calibration folder, by the pessimistic end of its bootstrap interval. With a labelled folder
the task decides an image-only bundle: the INT8 minus FP32 AUROC, by its interval. An ImageNet
classifier the model keeps is not consulted: its classes mean nothing for a machine part. Both
models run single-threaded here, so a rerun on the same inputs computes the same numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.bundle.manifest import Labels, Validation
from edge.errors import ExportError
from edge.vision.encoder import l2_normalise
from edge.vision.patch_features import NEIGHBOURHOOD_PX, patch_features
from edge.vision.zero_shot import label_probabilities
from export.images import LabelledSet
from export.task_gate import Figure, auroc, auroc_difference, labelled_scores, score_rank_correlation

log = logging.getLogger(__name__)

_BATCH = 8
_MIN_RANKED_IMAGES = 5  # fewer images give no rank correlation worth gating on
RANK_INTERVAL_SLACK = 0.05  # how far below --min-rank-correlation the interval's lower end may reach


@dataclass(frozen=True)
class Gate:
    min_cosine: float = 0.98  # mean FP32/INT8 embedding cosine
    min_top1: float = 0.97  # fraction of images whose top-1 decision agrees
    # Spearman of each baseline head's FP32 and INT8 scores: the figure must reach it, and its lower
    # bound (task_gate.CONFIDENCE) must reach it less RANK_INTERVAL_SLACK. The figure keeps INT8 as
    # faithful as the task needs (the demo's 100 cells: INT8 at 0.949 misses 2-4 more of 60 checks than
    # weight-only); the bound keeps a small folder from passing by luck.
    min_rank_correlation: float = 0.95
    # with a labelled validation folder: FP32 AUROC minus INT8 AUROC, at the interval's upper end
    max_auroc_drop: float = 0.01

    def thresholds(self, image_only: bool, ranked: bool, labelled: bool = False) -> dict[str, float]:
        """The figures that decide, with their limits: the ones the bundle's heads depend on (an
        image-only bundle: the task on a labelled folder, else the heads' ranks, else the cosine)."""
        task = {"auroc_difference_low": -self.max_auroc_drop} if labelled else {}
        if image_only and labelled:
            return task
        if image_only:
            return {"score_rank_correlation": self.min_rank_correlation,
                    "score_rank_correlation_low": round(self.min_rank_correlation - RANK_INTERVAL_SLACK, 3),
                    } if ranked else {"cosine_mean": self.min_cosine}
        return {"cosine_mean": self.min_cosine, "top1_agreement": self.min_top1, **task}


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

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # the same sums in the same order on every run and machine
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
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
    neighbourhood_px: int = NEIGHBOURHOOD_PX,
    top_share: float = 0.0,
    progress: Callable[[Iterable[np.ndarray]], Iterable[np.ndarray]] = iter,
    labelled: LabelledSet | None = None,
) -> Validation:
    """Measure INT8 against FP32 on ``images`` (every calibration image), the patch head scored as the bundle
    will score it (``neighbourhood_px``, ``top_share``), and decide the gate."""
    if not images:
        raise ExportError("no images to validate INT8 against FP32")
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
    ranks: dict[str, Figure] = {}
    if len(images) >= _MIN_RANKED_IMAGES:
        ranks = score_rank_correlation(_head_inputs(reference, bool(feature_outputs), neighbourhood_px),
                                       _head_inputs(candidate, bool(feature_outputs), neighbourhood_px), top_share)
    cosine_mean = float(cosine.mean())
    image_only = labels is None
    if image_only and not ranks and labelled is None:
        log.warning("only %d images: too few to rank, so INT8 is gated on embedding cosine; "
                    "give --calibration at least %d images for the task gate", len(images), 4 * _MIN_RANKED_IMAGES)
    task: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if labelled is not None:
        for name, model in (("fp32", fp32), ("int8", int8)):
            sides = [_head_inputs(run_onnx(model, input_name, outputs, side), bool(feature_outputs), neighbourhood_px)
                     for side in (labelled.good, labelled.defect)]
            task[name] = labelled_scores(*sides, top_share=top_share)
    difference = auroc_difference(task["fp32"], task["int8"]) if task else None
    figures = {"cosine_mean": cosine_mean, "top1_agreement": 1.0 if top1 is None else top1,
               "score_rank_correlation": min((f.value for f in ranks.values()), default=1.0),
               "score_rank_correlation_low": min((f.low for f in ranks.values()), default=1.0),
               "auroc_difference_low": 0.0 if difference is None else difference.low}
    thresholds = gate.thresholds(image_only, bool(ranks), labelled is not None)
    return Validation(
        images=len(images), cosine_mean=cosine_mean, cosine_min=float(cosine.min()), top1_agreement=top1,
        max_probability_shift=shift, score_rank_correlation={head: f.value for head, f in ranks.items()},
        score_rank_interval={head: (f.low, f.high) for head, f in ranks.items()},
        auroc_fp32=auroc(*task["fp32"]) if task else None, auroc_int8=auroc(*task["int8"]) if task else None,
        auroc_difference_interval=None if difference is None else (difference.low, difference.high),
        thresholds=thresholds, passed=all(figures[name] >= limit for name, limit in thresholds.items()),
    )


def _head_inputs(outputs: list[np.ndarray], feature_maps: bool, neighbourhood_px: int) -> dict[str, np.ndarray]:
    """Raw model outputs [embeds, patches or maps...] -> what the baseline heads read, as the board builds it."""
    inputs = {"embeddings": outputs[0]}
    if feature_maps:
        inputs["patches"] = patch_features(outputs[1:], neighbourhood_px)[0]
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
    """'60 images: cosine mean 0.9899 (min 0.9628), knn score rank correlation 0.967 (0.939-0.981), ...'."""
    top1 = f", top-1 agreement {validation.top1_agreement:.1%}" if validation.top1_agreement is not None else ""
    return f"{validation.images} images: cosine mean {validation.cosine_mean:.4f} " \
           f"(min {validation.cosine_min:.4f}){top1}" + "".join(f", {part}" for part in task_figures(validation))


def task_figures(validation: Validation) -> list[str]:
    """The heads' rank correlations and the labelled AUROC, each with its interval, as people read them."""
    parts = []
    for head, value in validation.score_rank_correlation.items():
        low, high = validation.score_rank_interval.get(head, (value, value))
        parts.append(f"{head} score rank correlation {value:.3f} ({low:.3f}-{high:.3f})")
    if validation.auroc_int8 is not None and validation.auroc_fp32 is not None:
        interval = validation.auroc_difference_interval
        spread = "" if interval is None else f", difference {interval[0]:+.3f} to {interval[1]:+.3f}"
        parts.append(f"labelled AUROC INT8 {validation.auroc_int8:.3f} vs FP32 {validation.auroc_fp32:.3f}{spread}")
    return parts


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
