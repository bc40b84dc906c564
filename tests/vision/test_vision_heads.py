"""The pure vision heads: zero-shot, few-shot, normal baseline, calibration, temporal context."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.elpv_quality import expected_calibration_error
from edge.bundle.manifest import Labels
from edge.vision.baseline import build_patch_memory, greedy_coreset, knn_scores, patch_scores
from edge.vision.calibration import (
    ConformalScorer,
    PlattMap,
    anomaly_probability,
    combine_p_values,
    leave_one_out_p_values,
)
from edge.vision.few_shot import FewShotHead
from edge.vision.temporal import CameraWindow, TemporalSettings
from edge.vision.zero_shot import label_probabilities


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def _labels(activation: str, scale: float, bias: float = 0.0) -> Labels:
    names = (("ok", "ok"), ("rust", "fault"), ("leak", "warning"))
    entries = [{"name": n, "severity": s, "prompts": [n]} for n, s in names]
    return Labels.model_validate({"entries": entries, "embeddings_file": "l.npy", "activation": activation,
                                  "logit_scale": scale, "logit_bias": bias})


def test_zero_shot_softmax_matches_clip_formula_and_sigmoid_is_independent() -> None:
    text = _unit(np.eye(3, 4) + 0.1)
    image = _unit(np.array([1.0, 0.2, 0.0, 0.1]))
    softmax = label_probabilities(image, text, _labels("softmax", 100.0))
    logits = 100.0 * text @ image
    assert np.allclose(softmax, np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum())
    assert softmax.argmax() == 0 and softmax.sum() == pytest.approx(1.0)
    sigmoid = label_probabilities(image, text, _labels("sigmoid", 10.0, -5.0))
    assert np.allclose(sigmoid, 1 / (1 + np.exp(-(10.0 * text @ image - 5.0))))
    assert sigmoid.sum() != pytest.approx(1.0)


def test_knn_and_patch_scores_rank_the_odd_frame_highest() -> None:
    rng = np.random.default_rng(0)
    centre = rng.normal(size=16)
    memory = _unit(centre + 0.1 * rng.normal(size=(50, 16)))
    normal = _unit(centre + 0.1 * rng.normal(size=(5, 16)))
    odd = _unit(rng.normal(size=(1, 16)))
    scores = knn_scores(np.concatenate([normal, odd]), memory, k=3)
    assert scores.argmax() == 5 and scores[5] > 3 * scores[:5].max()
    # Patch head: one odd patch among normal ones is enough to stand out.
    patch_memory = _unit(centre + 0.1 * rng.normal(size=(200, 16)))
    frames = _unit(centre + 0.1 * rng.normal(size=(3, 9, 16)))
    frames[2, 4] = _unit(rng.normal(size=16))
    assert patch_scores(frames, patch_memory).argmax() == 2


def test_coreset_bounds_memory_and_covers_every_cluster() -> None:
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(5, 200)) * 10
    features = _unit(np.concatenate([c + rng.normal(size=(300, 200)) for c in centres]))
    picked = greedy_coreset(features, 40)
    assert len(set(picked.tolist())) == 40
    cluster_of = np.repeat(np.arange(5), 300)
    assert set(cluster_of[picked]) == set(range(5))  # farthest-point selection visits every cluster
    memory = build_patch_memory(features.reshape(100, 15, 200), max_patches=64)
    assert memory.shape == (64, 200)
    assert build_patch_memory(features[:30].reshape(3, 10, 200), max_patches=64).shape == (30, 200)


@settings(deadline=None, max_examples=15)
@given(st.integers(min_value=0, max_value=10_000))
def test_conformal_p_values_are_valid_on_normal_frames(seed: int) -> None:
    """Over fresh calibration sets and normal test frames, P(p <= alpha) <= alpha."""
    rng = np.random.default_rng(seed)
    trials = 1500
    p_values = np.array([ConformalScorer.fit(rng.gamma(2.0, size=20)).p_value(rng.gamma(2.0)) for _ in range(trials)])
    assert ((p_values > 0) & (p_values <= 1)).all()
    for alpha in (0.005, 0.02, 0.1, 0.25):  # below 1/21 exercises the exponential tail
        assert (p_values <= alpha).mean() <= alpha + 4 * np.sqrt(alpha * (1 - alpha) / trials)
    assert (p_values <= 0.5).mean() > 0.4  # and they are not uselessly conservative


def test_tail_extends_p_values_beyond_the_calibration_range() -> None:
    scorer = ConformalScorer.fit(np.linspace(1.0, 2.0, 19))
    assert scorer.p_value(0.0) == 1.0
    assert scorer.p_value(2.0) == pytest.approx(2 / 20)
    beyond = [scorer.p_value(s) for s in (2.1, 3.0, 10.0)]
    assert beyond[0] < 1 / 20 and beyond[0] > beyond[1] > beyond[2] > 0
    assert scorer.threshold(0.01) > 2.0  # beyond the data, from the tail
    assert scorer.p_value(scorer.threshold(0.01)) == pytest.approx(0.01, rel=1e-6)
    assert ConformalScorer.fit(np.full(10, 0.5)).tail_scale > 0  # a static scene still has a tail


def test_tail_probability_keeps_the_false_alarm_promise() -> None:
    assert anomaly_probability(0.5) < 0.15 < 0.85 < anomaly_probability(1e-4)
    probabilities = [anomaly_probability(p) for p in (0.9, 0.3, 0.05, 0.01, 1e-6)]
    assert probabilities == sorted(probabilities)
    # uniform p on normal frames: fewer than 5 % of them reach 0.5
    assert anomaly_probability(0.04, prior=0.5) > 0.5 > anomaly_probability(0.05, prior=0.5)


def test_platt_map_fitted_on_few_labels_is_calibrated_on_new_frames() -> None:
    rng = np.random.default_rng(2)
    # normal p-values uniform, anomalous ones pile up near 0 (Beta(0.1, 1)): 50 held out, 40 labelled
    platt = PlattMap.fit(rng.uniform(size=50), rng.beta(0.1, 1.0, size=40), "patchcore", prior=0.5)
    test_p = np.concatenate([rng.uniform(size=5000), rng.beta(0.1, 1.0, size=5000)])
    truth = np.repeat([0.0, 1.0], 5000)
    fitted = np.array([platt.probability(p) for p in test_p])
    tail = np.array([anomaly_probability(p) for p in test_p])
    assert platt.slope > 0 and expected_calibration_error(fitted, truth) < 0.05
    assert expected_calibration_error(fitted, truth) < expected_calibration_error(tail, truth)
    # the prior moves the map, not the ranking
    rare = PlattMap.fit(rng.uniform(size=50), rng.beta(0.1, 1.0, size=10), "patchcore", prior=0.05)
    assert rare.probability(0.01) < platt.probability(0.01)
    with pytest.raises(ValueError, match="normal and abnormal"):
        PlattMap.fit(np.array([0.5]), np.array([]), "knn")


def test_leave_one_out_p_values_follow_a_new_normal_frame() -> None:
    scores = np.arange(1.0, 11.0)
    p = leave_one_out_p_values(scores)
    assert p[0] == pytest.approx(1.0) and p[-2] == pytest.approx(2 / 10)
    assert p[-1] < 1 / 10  # the largest lies beyond the others: the exponential tail
    assert combine_p_values([0.2, 0.01]) == pytest.approx(0.02)
    assert combine_p_values([0.9, 0.8]) == 1.0


def test_few_shot_prototypes_classify_and_calibrate() -> None:
    rng = np.random.default_rng(3)
    centres = _unit(rng.normal(size=(3, 32)))
    ids = np.repeat(np.arange(3), 6)
    examples = _unit(centres[ids] + 0.15 * rng.normal(size=(18, 32)))
    head = FewShotHead.fit(examples, ids, ("normal", "crack", "stain"))
    queries = _unit(centres + 0.15 * rng.normal(size=(3, 32)))
    for index, name in enumerate(head.names):
        probabilities = head.probabilities(queries[index])
        assert max(probabilities, key=probabilities.__getitem__) == name
        assert sum(probabilities.values()) == pytest.approx(1.0)
    # Well separated classes get a sharp softmax, overlapping ones a soft one.
    blurred = _unit(centres[ids] + 2.0 * rng.normal(size=(18, 32)))
    assert FewShotHead.fit(blurred, ids, head.names).scale < head.scale
    with pytest.raises(ValueError, match="two classes"):
        FewShotHead.fit(examples[:6], ids[:6], ("normal",))


def test_temporal_window_smooths_one_odd_frame_and_has_hysteresis() -> None:
    window = CameraWindow(TemporalSettings(window_frames=20, smooth_frames=5, on_threshold=0.7, off_threshold=0.4))
    states = [window.update(p) for p in [0.1] * 10 + [0.99] + [0.1] * 3]
    assert not any(state.anomalous for state in states)  # one glitch does not flip the verdict
    states = [window.update(p) for p in [0.9] * 3]
    assert states[-1].anomalous
    assert window.update(0.5).anomalous and window.update(0.5).anomalous  # between thresholds: stays
    for _ in range(5):
        state = window.update(0.1)
    assert not state.anomalous
    assert state.frames == 20


def test_near_duplicate_frames_are_skipped_but_not_forever() -> None:
    window = CameraWindow(TemporalSettings(max_skipped_frames=3))
    still = np.full((16, 16), 0.5, dtype=np.float32)
    assert not window.is_duplicate(still)  # nothing scored yet
    window.update(0.1, still)
    assert [window.is_duplicate(still + 0.001) for _ in range(4)] == [True, True, True, False]
    window.update(0.1, still)
    assert not window.is_duplicate(still + 0.2)  # the scene changed
