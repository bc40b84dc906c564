"""One frame through every vision head: preprocess -> encoder -> zero-shot, few-shot, baseline -> calibrated.

``VisionScorer`` is built once (model loaded and warmed up, profile checked against the bundle)
and then scores frames; ``score_image`` is the one-shot convenience. The baseline heads' scores and
p-value come from ``scoring.BaselineScorer``, the one function every caller uses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge.bundle.load import Bundle
from edge.frames.roi import RegionOfInterest, apply_roi
from edge.vision.calibration import anomaly_probability
from edge.vision.encoder import Encoded, ImageEncoder, RuntimeOptions
from edge.vision.few_shot import FewShotHead
from edge.vision.preprocess import ImageInput, Prepared, load_rgb, prepare
from edge.vision.profile import Profile
from edge.vision.scoring import GLOBAL_HEAD, PATCH_HEAD, BaselineScorer
from edge.vision.temporal import TemporalContext, TemporalState
from edge.vision.zero_shot import label_probabilities

OK_SEVERITY = "ok"


@dataclass(frozen=True)
class VisionResult:
    """Every head's output for one frame; JSON-ready through ``to_dict``."""

    anomaly_score: float | None  # baseline distance (patch head when present), else zero-shot abnormal mass
    p_value: float | None  # conformal p-value under "this frame is normal" (profile only)
    p_anomaly: float | None  # calibrated probability that the frame is anomalous (profile only)
    labels: dict[str, float]  # zero-shot label probabilities (bundle labels)
    few_shot: dict[str, float]  # few-shot condition probabilities (profile examples)
    severities: dict[str, str]  # label/condition name -> ok | warning | fault
    heads: dict[str, float]  # raw per-head scores
    timings_ms: dict[str, float] = field(default_factory=dict)  # decode, preprocess, inference (model), features, heads
    # (rows, cols) float32 distance of every patch to normal, over the model input (patch head only)
    anomaly_map: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def top_label(self) -> str | None:
        """The winning condition name: few-shot (enrolled on this asset) before zero-shot."""
        probabilities = self.few_shot or self.labels
        return max(probabilities, key=probabilities.__getitem__) if probabilities else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "anomaly_score": self.anomaly_score,
            "p_value": self.p_value,
            "p_anomaly": self.p_anomaly,
            "labels": dict(self.labels),
            "few_shot": dict(self.few_shot),
            "top_label": self.top_label,
            "heads": dict(self.heads),
            "timings_ms": {name: round(value, 3) for name, value in self.timings_ms.items()},
            "anomaly_map_grid": None if self.anomaly_map is None else list(self.anomaly_map.shape),
        }


class VisionHeads:
    """Every head the bundle and profile make available, applied to an encoded frame (no model here)."""

    def __init__(self, bundle: Bundle, profile: Profile | None = None) -> None:
        self.profile = profile
        manifest = bundle.manifest
        self._labels = manifest.labels
        self._label_embeddings = bundle.label_embeddings() if manifest.labels else None
        entries = manifest.labels.entries if manifest.labels else []
        self._severities: dict[str, str] = {label.name: label.severity for label in entries}
        self._independent_labels = manifest.labels is not None and manifest.labels.activation == "sigmoid"
        self._baseline = None if profile is None else BaselineScorer(profile)
        self._few_shot: FewShotHead | None = None
        if profile is not None:
            self._severities.update(zip(profile.few_shot_names, profile.few_shot_severities, strict=True))
            if profile.few_shot_embeddings is not None and profile.few_shot_label_ids is not None:
                self._few_shot = FewShotHead.fit(profile.few_shot_embeddings, profile.few_shot_label_ids,
                                                 profile.few_shot_names)

    def score(self, encoded: Encoded, timings_ms: dict[str, float] | None = None) -> VisionResult:
        """Run the heads on one encoded frame; ``timings_ms`` (decode, inference, ...) gains 'heads'."""
        start = time.perf_counter()
        heads: dict[str, float] = {}
        labels: dict[str, float] = {}
        if self._labels is not None and self._label_embeddings is not None:
            probs = label_probabilities(encoded.embedding, self._label_embeddings, self._labels)
            labels = {label.name: float(p) for label, p in zip(self._labels.entries, probs, strict=True)}
        few_shot = self._few_shot.probabilities(encoded.embedding) if self._few_shot else {}
        p_value = p_anomaly = anomaly_map = None
        if self.profile is not None and self._baseline is not None:
            baseline = self._baseline.score(encoded.embedding[None], None if encoded.patches is None
                                            else encoded.patches[None])
            heads.update({head: float(scores[0]) for head, scores in baseline.heads.items()})
            p_value = float(baseline.p_values[0])
            if baseline.patch_distances is not None:
                anomaly_map = baseline.patch_distances[0].reshape(encoded.patch_grid or (1, -1))
            platt = self.profile.platt
            p_anomaly = (platt.probability(self._baseline.p_value(platt.head, heads[platt.head])) if platt
                         else anomaly_probability(p_value, self.profile.alternative_shape, self.profile.prior))
        abnormal_mass = self._abnormal_mass(few_shot or labels, independent=not few_shot and self._independent_labels)
        if abnormal_mass is not None:
            heads["labels_abnormal"] = abnormal_mass
        anomaly_score = heads.get(PATCH_HEAD, heads.get(GLOBAL_HEAD, abnormal_mass))
        timings = {**(timings_ms or {}), "heads": (time.perf_counter() - start) * 1e3}
        return VisionResult(anomaly_score=anomaly_score, p_value=p_value, p_anomaly=p_anomaly, labels=labels,
                            few_shot=few_shot, severities=dict(self._severities), heads=heads, timings_ms=timings,
                            anomaly_map=anomaly_map)

    def _abnormal_mass(self, probabilities: dict[str, float], independent: bool) -> float | None:
        """Probability the label heads put on non-ok conditions (softmax: summed; sigmoid: the largest)."""
        if not probabilities:
            return None
        abnormal = [p for name, p in probabilities.items() if self._severities.get(name) != OK_SEVERITY]
        if not abnormal:
            return 0.0
        return float(max(abnormal) if independent else min(1.0, sum(abnormal)))


class VisionScorer:
    """The loaded encoder plus the heads: what the service keeps per bundle and asset."""

    def __init__(self, encoder: ImageEncoder, profile: Profile | None = None) -> None:
        self.encoder = encoder
        self.heads = VisionHeads(encoder.bundle, profile)
        # per camera: the last scored result (reused for near-duplicate frames) and its embedding
        self._last: dict[str, tuple[VisionResult, np.ndarray]] = {}

    @classmethod
    def load(cls, bundle: Bundle, profile: Profile | None = None,
             options: RuntimeOptions | None = None) -> VisionScorer:
        return cls(ImageEncoder.load(bundle, options), profile)

    def embed(self, source: ImageInput) -> tuple[Prepared, Encoded]:
        prepared = prepare(source, self.encoder.bundle.manifest.preprocessing)
        return prepared, self.encoder.encode(prepared.tensor)

    def score(self, source: ImageInput) -> VisionResult:
        prepared, encoded = self.embed(source)
        return self.score_encoded(prepared, encoded)

    def score_frame(self, source: ImageInput, camera: str,
                    context: TemporalContext | None) -> tuple[VisionResult, TemporalState | None]:
        """Score a camera frame in its temporal context; a near-duplicate frame reuses the last result.

        Without a context (a camera that shows another part in every frame) the frame is judged on
        its own: a part that looks like the last one is still another part. The state is None then,
        and without a profile (there is no calibrated p_anomaly to smooth).
        """
        prepared = prepare(source, self.encoder.bundle.manifest.preprocessing)
        window = None if context is None else context.window(camera)
        last = self._last.get(camera)
        if last is not None and window is not None and window.is_duplicate(prepared.thumbnail):
            result = replace(last[0], timings_ms={"decode": prepared.decode_ms, "preprocess": prepared.preprocess_ms})
            thumbnail = None
        else:
            encoded = self.encoder.encode(prepared.tensor)
            result = self.score_encoded(prepared, encoded)
            self._last[camera] = (result, encoded.embedding)
            thumbnail = prepared.thumbnail
        state = None if result.p_anomaly is None or window is None else window.update(result.p_anomaly, thumbnail)
        return result, state

    def last_embedding(self, camera: str) -> np.ndarray | None:
        """The embedding of the camera's last scored (not skipped) frame: what learning stores."""
        last = self._last.get(camera)
        return None if last is None else last[1]

    def last_anomaly_map(self, camera: str) -> np.ndarray | None:
        """Where the camera's last scored frame differed from normal: what history keeps with it."""
        last = self._last.get(camera)
        return None if last is None else last[0].anomaly_map

    def score_encoded(self, prepared: Prepared, encoded: Encoded) -> VisionResult:
        """Run the heads on an already-encoded frame (the service checks for duplicates in between)."""
        return self.heads.score(encoded, {"decode": prepared.decode_ms, "preprocess": prepared.preprocess_ms,
                                          "inference": encoded.inference_ms, "features": encoded.features_ms})


def score_image(bundle: Bundle, profile: Profile | None, image_path: ImageInput | Path,
                options: RuntimeOptions | None = None) -> VisionResult:
    """Load the model, score one image with every available head, return the result."""
    return VisionScorer.load(bundle, profile, options).score(image_path)


def embed_many(encoder: ImageEncoder, sources: list[Path], batch_size: int = 8,
               roi: RegionOfInterest | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Many images (cropped to ``roi`` when given) -> ((N, D) embeddings, (N, T, C) patch features or None)."""
    pre = encoder.bundle.manifest.preprocessing

    def tensor(path: Path) -> np.ndarray:
        return prepare(path if roi is None else apply_roi(np.asarray(load_rgb(path)), roi), pre).tensor

    embeddings: list[np.ndarray] = []
    patches: list[np.ndarray] = []
    for start in range(0, len(sources), batch_size):
        batch = np.concatenate([tensor(path) for path in sources[start:start + batch_size]])
        batch_embeddings, batch_patches = encoder.encode_batch(batch)
        embeddings.append(batch_embeddings)
        if batch_patches is not None:
            patches.append(batch_patches)
    return np.concatenate(embeddings), (np.concatenate(patches) if patches else None)
