"""Anomaly maps kept beside the frames of non-ok verdicts: saved, read back, removed with the frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.evidence import Condition
from edge.store import anomaly_maps
from edge.store.history import History, Retention
from tests.history_support import make_verdict

FRAME = np.full((60, 80, 3), 90, np.uint8)
MAP = np.arange(12, dtype=np.float32).reshape(3, 4)


def test_a_non_ok_verdict_keeps_its_map_and_an_ok_one_keeps_none(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite3") as history:
        fault = history.get(history.add(make_verdict(condition=Condition.FAULT), FRAME, MAP))
        ok = history.get(history.add(make_verdict(condition=Condition.OK, ts=1001.0), FRAME, MAP))
    assert fault is not None and fault.frame is not None
    assert np.array_equal(anomaly_maps.load_beside(fault.frame), MAP)
    assert ok is not None and ok.frame is None
    assert len(list((tmp_path / "frames").glob("*" + anomaly_maps.SUFFIX))) == 1


def test_a_map_that_cannot_be_kept_costs_neither_the_verdict_nor_the_frame(tmp_path: Path) -> None:
    broken = MAP.copy()
    broken[0, 0] = np.nan
    with History(tmp_path / "h.sqlite3") as history:
        stored = history.get(history.add(make_verdict(condition=Condition.WARNING), FRAME, broken))
    assert stored is not None and stored.frame is not None and stored.frame.is_file()
    assert anomaly_maps.load_beside(stored.frame) is None


def test_retention_removes_the_map_with_its_frame(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite3", retention=Retention(max_age_s=86400.0)) as history:
        old = history.get(history.add(make_verdict(condition=Condition.FAULT, ts=1000.0), FRAME, MAP))
        assert old is not None and old.frame is not None
        assert anomaly_maps.path_beside(old.frame).is_file()
        history.prune(now_s=1000.0 + 3 * 86400)
    assert not old.frame.exists() and not anomaly_maps.path_beside(old.frame).exists()
