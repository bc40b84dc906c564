"""The HTTP API's read routes for assets and verdicts: the latest state, history, frames, anomaly maps
and trends. A mixin of ``HttpApi``, as ``alert_routes`` is: routing and auth stay in ``http_api.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edge.alerts.headline import headline
from edge.errors import StorageError
from edge.evidence import dumps
from edge.outputs.http_types import Problem, Response
from edge.outputs.messages import state_payload
from edge.store import anomaly_maps
from edge.store.history import StoredVerdict, parse_since

if TYPE_CHECKING:
    from edge.alerts.lifecycle import AlertBook
    from edge.outputs.assets import DescribedAsset
    from edge.store.history import History
    from edge.store.trends import Trends

MAX_LIMIT = 1000
FRAME_LOOKBACK = 100  # how many recent verdicts to search for the asset's last saved frame


class VerdictRoutes:
    assets: dict[str, DescribedAsset]
    alerts: AlertBook | None
    history: History
    trends: Trends | None
    site: str

    _asset: Callable[[str], DescribedAsset]  # HttpApi's lookup: 404 for an unknown asset
    alert_status: Callable[[str], dict[str, Any] | None]

    def list_assets(self, query: dict[str, str]) -> Response:
        listed = []
        for asset in self.assets.values():
            latest = self.history.latest(asset.id)
            listed.append({
                "id": asset.id, "name": asset.name or asset.id, "check_interval_s": asset.check_interval_s,
                "cameras": [camera.name for camera in asset.cameras],
                "sensors": [{"name": s.name, "quantity": s.quantity, "unit": s.unit} for s in asset.sensors],
                "latest": None if latest is None else state_payload(latest.verdict),
                "headline": None if latest is None else headline(
                    latest.verdict, None if self.alerts is None else self.alerts.settings.actions).to_dict(),
                "latest_id": None if latest is None else latest.id,
                "alert": self.alert_status(asset.id),
            })
        return Response(200, dumps({"site": self.site, "assets": listed}))

    def latest(self, query: dict[str, str], asset_id: str) -> Response:
        asset = self._asset(asset_id)
        recent = self.history.verdicts(asset=asset.id, limit=FRAME_LOOKBACK)
        if not recent:
            raise Problem(404, f"asset {asset.id!r} has no verdict yet")
        body = _verdict_json(recent[0])
        with_frame = next((stored for stored in recent if stored.frame is not None), None)
        body["last_frame"] = None if with_frame is None else {
            "verdict_id": with_frame.id, "verdict": with_frame.verdict.condition.value,
            "timestamp": with_frame.verdict.timestamp, "url": _frame_url(with_frame),
            "anomaly_url": _anomaly_url(with_frame),
        }
        return Response(200, dumps(body))

    def list_verdicts(self, query: dict[str, str]) -> Response:
        asset = self._asset(query["asset"]).id if query.get("asset") else None
        since = _since(query["since"]) if query.get("since") else None
        limit = _parse_limit(query.get("limit", "100"))
        found = self.history.verdicts(asset=asset, since=since, limit=limit)
        return Response(200, dumps({"verdicts": [_verdict_json(stored) for stored in found]}))

    def asset_frame(self, query: dict[str, str], asset_id: str) -> Response:
        asset = self._asset(asset_id)
        recent = self.history.verdicts(asset=asset.id, limit=FRAME_LOOKBACK)
        stored = next((item for item in recent if item.frame is not None), None)
        if stored is None:
            raise Problem(404, f"asset {asset.id!r} has no saved frame (frames are kept for non-ok verdicts)")
        return _jpeg(stored)

    def asset_trends(self, query: dict[str, str], asset_id: str) -> Response:
        """Per sensor and metric: the slope per day, and the points when ``metric`` is asked for."""
        asset = self._asset(asset_id)
        if self.trends is None:
            raise Problem(404, "trends are not kept by this service")
        since = _since(query["since"]) if query.get("since") else None
        limit = _parse_limit(query.get("limit", str(MAX_LIMIT)))
        listed = []
        for summary in self.trends.summary(asset.id, since):
            if query.get("metric") not in (None, summary.metric) or query.get("sensor") not in (None, summary.sensor):
                continue
            item = summary.to_dict()
            if query.get("metric"):
                item["series"] = self.trends.series(asset.id, summary.sensor, summary.metric, since, limit)
            listed.append(item)
        return Response(200, dumps({"asset": asset.id, "trends": listed}))

    def verdict_frame(self, query: dict[str, str], verdict_id: str) -> Response:
        stored = self.history.get(int(verdict_id))
        if stored is None or stored.frame is None:
            raise Problem(404, f"verdict {verdict_id} has no saved frame")
        return _jpeg(stored)

    def verdict_anomaly(self, query: dict[str, str], verdict_id: str) -> Response:
        stored = self.history.get(int(verdict_id))
        anomaly_map = None if stored is None or stored.frame is None else anomaly_maps.load_beside(stored.frame)
        if stored is None or stored.frame is None or anomaly_map is None:
            raise Problem(404, f"verdict {verdict_id} has no saved anomaly map (kept with non-ok verdicts' frames)")
        try:
            return Response(200, anomaly_maps.overlay_png(stored.frame, anomaly_map), "image/png",
                            {"Cache-Control": "max-age=86400, immutable"})
        except StorageError as exc:
            raise Problem(404, f"the frame of verdict {stored.id} is gone or unreadable") from exc


def _frame_url(stored: StoredVerdict) -> str | None:
    return None if stored.frame is None else f"/api/verdicts/{stored.id}/frame.jpg"


def _anomaly_url(stored: StoredVerdict) -> str | None:
    """The frame with its anomaly map drawn over it, when one was kept."""
    if stored.frame is None or not anomaly_maps.path_beside(stored.frame).is_file():
        return None
    return f"/api/verdicts/{stored.id}/anomaly.png"


def _verdict_json(stored: StoredVerdict) -> dict[str, Any]:
    """A stored verdict for clients: the frame as a URL, never a path on the board."""
    body = stored.to_dict()
    del body["frame"]
    body["frame_url"] = _frame_url(stored)
    body["anomaly_url"] = _anomaly_url(stored)
    return body


def _jpeg(stored: StoredVerdict) -> Response:
    assert stored.frame is not None
    try:
        data = stored.frame.read_bytes()
    except FileNotFoundError as exc:
        raise Problem(404, f"the frame of verdict {stored.id} was removed by retention") from exc
    except OSError as exc:
        raise StorageError(f"cannot read frame {stored.frame}: {exc}") from exc
    return Response(200, data, "image/jpeg", {"Cache-Control": "max-age=86400, immutable"})


def _since(text: str) -> float:
    try:
        return parse_since(text, time.time())
    except ValueError as exc:
        raise Problem(400, str(exc)) from exc


def _parse_limit(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:  # '²'.isdigit() is True
        raise Problem(400, f"limit={text!r} must be a whole number from 1 to {MAX_LIMIT}")
    return int(text)
