"""Enrollment: embeddings of normal frames (and labelled examples) -> a calibrated asset profile.

Normal frames are split once, at random: most become the memory bank, the rest are held out and
scored against it to calibrate the conformal p-values (a frame must never be scored against a
memory that contains itself, or every score would look better than it will on new frames).
Labelled abnormal examples, when given, fit the Platt map behind ``p_anomaly`` together with the
held-out normal frames, on the p-value of the patch head when there is one (the strongest head: on
ELPV, with 10 labelled cells, it calibrated to ECE 0.06 where the Bonferroni-combined p-value of
both heads reached 0.09); without labels ``p_anomaly`` stays a tail probability
(edge/vision/calibration.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import numpy as np

from edge.errors import InputError
from edge.vision.baseline import DEFAULT_K, DEFAULT_MAX_PATCHES, build_patch_memory, knn_scores
from edge.vision.calibration import (
    DEFAULT_PRIOR,
    ConformalScorer,
    PlattMap,
    leave_one_out_p_values,
)
from edge.vision.local_scale import LocalScale, scaled_patch_scores
from edge.vision.profile import Profile
from edge.vision.scoring import BaselineScorer

log = logging.getLogger(__name__)

MIN_NORMAL_FRAMES = 4
NORMAL_NAME = "normal"
CALIBRATION_FRACTION = 0.25
_REPORTED_ALPHAS = (0.05, 0.01)
PRIMARY_HEAD = "patchcore"  # the head the Platt map reads when the bundle has patch features


@dataclass(frozen=True)
class LabelledExamples:
    name: str
    severity: str  # ok | warning | fault
    embeddings: np.ndarray  # (E, D)
    patches: np.ndarray | None  # (E, T, C)


def build_profile(fingerprint: str, normal_embeddings: np.ndarray, normal_patches: np.ndarray | None,
                  labelled: list[LabelledExamples] | None = None, calibration_fraction: float = CALIBRATION_FRACTION,
                  k: int = DEFAULT_K, max_patches: int = DEFAULT_MAX_PATCHES, seed: int = 0,
                  prior: float = DEFAULT_PRIOR, top_share: float = 0.0) -> Profile:
    """Split, build memories, calibrate every baseline head, fit the few-shot and anomaly models.

    ``top_share`` is how the patch head turns patch distances into a frame score (the bundle's
    ``image_model.patch_top_share``, ``baseline.frame_scores``).
    """
    labelled = labelled or []
    frames = normal_embeddings.shape[0]
    if frames < MIN_NORMAL_FRAMES:
        raise InputError(f"enrollment needs at least {MIN_NORMAL_FRAMES} normal frames, got {frames}")
    order = np.random.default_rng(seed).permutation(frames)
    held_out = max(1, round(calibration_fraction * frames))
    calibration_ids, memory_ids = order[:held_out], order[held_out:]
    if held_out < 19:
        log.warning("only %d held-out normal frames: p-values are no finer than 1/%d; enroll more normal frames",
                    held_out, held_out + 1)
    memory = normal_embeddings[memory_ids].astype(np.float32)
    calibration = {"knn": knn_scores(normal_embeddings[calibration_ids], memory, k)}
    patch_memory: np.ndarray | None = None
    scale: LocalScale | None = None
    if normal_patches is not None:
        patch_memory = build_patch_memory(normal_patches[memory_ids], max_patches)
        scale = LocalScale.fit(normal_embeddings, normal_patches, max_patches, seed, top_share)
        calibration["patchcore"] = scaled_patch_scores(normal_embeddings[calibration_ids],
                                                       normal_patches[calibration_ids], patch_memory, scale,
                                                       own_rows=calibration_ids, top_share=top_share)

    scorers = {head: ConformalScorer.fit(scores) for head, scores in calibration.items()}
    normal = Profile(bundle_fingerprint=fingerprint, memory=memory, calibration=calibration,
                     patch_memory=patch_memory, local_scale=scale, patch_top_share=top_share, knn_k=k, prior=prior)
    baseline = BaselineScorer(normal)  # labelled examples are scored as every frame is
    head = PRIMARY_HEAD if PRIMARY_HEAD in calibration else "knn"
    abnormal_p = [baseline.p_value(head, float(score)) for group in labelled if group.severity != "ok"
                  for score in baseline.score(group.embeddings, group.patches).heads[head]]
    platt = None
    if abnormal_p and held_out >= 2:
        platt = PlattMap.fit(leave_one_out_p_values(calibration[head]), np.asarray(abnormal_p), head, prior)

    few_shot: dict[str, object] = {}
    if labelled:
        names = (NORMAL_NAME, *(group.name for group in labelled))
        few_shot = {
            "few_shot_names": names,
            "few_shot_severities": ("ok", *(group.severity for group in labelled)),
            "few_shot_embeddings": np.concatenate([memory, *(g.embeddings for g in labelled)]).astype(np.float32),
            "few_shot_label_ids": np.concatenate(
                [np.zeros(len(memory), dtype=np.int64)]
                + [np.full(len(g.embeddings), index + 1, dtype=np.int64) for index, g in enumerate(labelled)]
            ),
        }
    info = {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "normal_frames": frames,
        "memory_frames": int(memory_ids.size),
        "calibration_frames": int(held_out),
        "patch_memory": 0 if patch_memory is None else int(patch_memory.shape[0]),
        "patch_scale": (None if scale is None
                        else f"local: mean out-of-fold score of the {scale.neighbours} nearest of {frames} frames"),
        "labelled": {group.name: int(group.embeddings.shape[0]) for group in labelled},
        "thresholds": {head: {str(alpha): scorer.threshold(alpha) for alpha in _REPORTED_ALPHAS}
                       for head, scorer in scorers.items()},
        "p_anomaly": (f"Platt map fitted on {held_out} held-out normal and {len(abnormal_p)} labelled abnormal frames"
                      if platt else "tail probability under the normal model (no labelled abnormal frames)"),
    }
    return replace(normal, platt=platt, info=info, **few_shot)  # type: ignore[arg-type]

