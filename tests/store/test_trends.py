"""Vibration trends per asset: real SQLite, the real HTTP API on 127.0.0.1 checked against its
OpenAPI document, and the Prometheus gauge; values come from a real diagnosis."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bench.healthy_signals import healthy_burst
from bench.samples import asset
from edge.analytics import bearings, diagnosis, iso
from edge.analytics.to_evidence import vibration_evidence
from edge.evidence import Condition, Verdict
from edge.outputs.config import HttpSettings
from edge.outputs.http_api import HttpApi
from edge.outputs.metrics import Metrics
from edge.store.history import History
from edge.store.trends import DAY_S, Trends, slope_per_day, trend_values
from tests.http_support import check_against_openapi, request

NOW_S = 1_790_000_000.0


def wearing_verdict(day: int) -> Verdict:
    """A real diagnosis of a burst whose bearing band grows 10 % a day (wear), as the service makes it."""
    burst = healthy_burst(25.0, 12000.0, 1.0, fixed_depth=0.0) * (1.0 + 0.1 * day)
    found = diagnosis.diagnose(burst, 12000.0, 25.0, bearings.bearing("6205"), iso.ZoneLimits.for_machine())
    timestamp = NOW_S + day * DAY_S
    evidence = vibration_evidence("vibration:drive_end", found, timestamp)
    return Verdict("press-1", found.condition, found.confidence, (), (evidence,), timestamp)


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> list[Verdict]:
    return [wearing_verdict(day) for day in range(7)]


def test_a_diagnosis_carries_the_trended_values(week: list[Verdict]) -> None:
    values = trend_values(dict(week[0].evidence[0].values))
    assert {"velocity_rms_mm_s", "bearing_band_rms_g", "envelope_band_rms_g", "rpm", "line_db_outer_race",
            "line_db_inner_race", "line_db_rolling_element", "line_db_cage"} <= set(values)
    assert values["rpm"] == pytest.approx(1500.0, rel=0.01)  # 1 s burst, 1x and 3x clear of 50 Hz mains


def test_trends_keep_the_slope_across_restarts(tmp_path: Path, week: list[Verdict]) -> None:
    with_trends = Trends(tmp_path / "trends.sqlite3")
    for verdict in week[:4]:
        with_trends.publish(verdict)
    with_trends.close()
    reopened = Trends(tmp_path / "trends.sqlite3")
    for verdict in week[4:]:
        reopened.publish(verdict)
    points = reopened.series("press-1", "drive_end", "envelope_band_rms_g")
    assert len(points) == 7 and points[0][0] == NOW_S
    first = points[0][1]
    summary = {s.metric: s for s in reopened.summary("press-1")}["envelope_band_rms_g"]
    assert summary.points == 7 and summary.slope_per_day == pytest.approx(0.1 * first, rel=0.15)  # 10 % a day
    assert reopened.prune(NOW_S + 365 * DAY_S + 3.5 * DAY_S) > 0  # the first four days are older than a year
    assert len(reopened.series("press-1", "drive_end", "envelope_band_rms_g")) == 3
    year_later = replace(week[0], timestamp=NOW_S + 400 * DAY_S,
                         evidence=(replace(week[0].evidence[0], timestamp=NOW_S + 400 * DAY_S),))
    reopened.publish(year_later)  # writing prunes too: the week is gone, the new point stays
    assert reopened.series("press-1", "drive_end", "envelope_band_rms_g") == [
        (NOW_S + 400 * DAY_S, points[0][1])]
    reopened.close()


def test_slope_needs_two_points_in_time() -> None:
    assert slope_per_day([(0.0, 1.0)]) is None and slope_per_day([(5.0, 1.0), (5.0, 2.0)]) is None
    assert slope_per_day([(0.0, 1.0), (DAY_S, 3.0)]) == pytest.approx(2.0)


def test_trends_over_http_and_prometheus(tmp_path: Path, week: list[Verdict]) -> None:
    history, trends, metrics = History(tmp_path / "history.sqlite3"), Trends(tmp_path / "trends.sqlite3"), Metrics()
    for verdict in week:
        history.add(verdict)
        trends.publish(verdict)
        metrics.publish(verdict)
    try:
        with HttpApi(HttpSettings(port=0), history, metrics, [asset()], trends=trends) as api:
            status, headers, body = request(api.url + "/api/assets/press-1/trends?metric=envelope_band_rms_g")
            assert status == 200, body
            data = check_against_openapi("/api/assets/{asset_id}/trends", status, headers, body)
            (item,) = data["trends"]
            assert item["sensor"] == "drive_end" and len(item["series"]) == 7 and item["slope_per_day"] > 0
            status, headers, body = request(api.url + "/api/assets/press-1/trends")
            listed = check_against_openapi("/api/assets/{asset_id}/trends", status, headers, body)["trends"]
            assert "series" not in listed[0] and len(listed) >= 8
            status, headers, body = request(api.url + "/api/assets/nope/trends")
            check_against_openapi("/api/assets/{asset_id}/trends", status, headers, body)
            assert status == 404
        exposition = metrics.exposition().decode()
        line = next(row for row in exposition.splitlines() if row.startswith(
            'edgewatch_vibration{asset="press-1",metric="envelope_band_rms_g",sensor="drive_end"}'))
        last = json.loads(json.dumps(trends.series("press-1", "drive_end", "envelope_band_rms_g")[-1][1]))
        assert float(line.split()[-1]) == pytest.approx(last)
    finally:
        trends.close()
        history.close()
    assert week[-1].condition in (Condition.OK, Condition.WARNING, Condition.FAULT)
    assert np.isfinite(last)
