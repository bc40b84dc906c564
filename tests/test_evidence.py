"""The verdict's one wire form: to_dict/from_dict and the numpy -> JSON conversion."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edge.evidence import Condition, Evidence, EvidenceKind, Verdict, jsonable


def _verdict() -> Verdict:
    vibration = Evidence(
        "vibration:drive_end", EvidenceKind.VIBRATION, Condition.WARNING, 0.7, ("BPFO line",),
        {"velocity_rms_mm_s": np.float32(4.5), "spectrum_peaks_hz": np.array([29.9, 107.4]), "kurtosis": math.nan},
        "outer_race", 12.0,
    )
    blind = Evidence("camera:top", EvidenceKind.CAMERA_HEALTH, None, 0.0, ("black frame",), timestamp=12.0)
    return Verdict("pump-1", Condition.WARNING, 0.7, ("BPFO line",), (vibration, blind), 12.0, True,
                   {"status": "answered", "score": np.float64(0.9)})


def test_to_dict_is_plain_json_and_from_dict_inverts_it() -> None:
    verdict = _verdict()
    wire = json.loads(json.dumps(verdict.to_dict()))  # no default=: numpy is already gone
    assert wire["evidence"][0]["values"]["spectrum_peaks_hz"] == [29.9, 107.4]
    assert type(wire["evidence"][0]["values"]["velocity_rms_mm_s"]) is float
    back = Verdict.from_dict({**wire, "id": 3, "frame": None})
    assert back.evidence[1].condition is None and back.escalation == {"status": "answered", "score": 0.9}
    assert back.evidence[0].fault_type == "outer_race" and back.condition is Condition.WARNING
    assert json.dumps(back.to_dict()) == json.dumps(wire)


def test_finite_turns_nan_and_infinity_into_null() -> None:
    value = {"a": np.float32("nan"), "b": (1.0, math.inf), 3: np.int64(2)}
    assert jsonable(value, finite=True) == {"a": None, "b": [1.0, None], "3": 2}
    assert math.isnan(jsonable(value)["a"])


def test_from_dict_rejects_what_is_not_a_verdict() -> None:
    with pytest.raises(ValueError):
        Verdict.from_dict({**_verdict().to_dict(), "verdict": "melted"})
    with pytest.raises(KeyError):
        Verdict.from_dict({"asset": "pump-1"})
