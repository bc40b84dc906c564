"""The HTTP API's alert routes: read alerts and the audit trail, and the technician's actions
(acknowledge, snooze, maintenance, mark a verdict wrong, undo). A mixin of ``HttpApi``: routing,
auth and cross-site checks stay in ``http_api.py``; these handlers only parse and delegate.

Every write takes a small JSON object; ``by`` (who did it) is required, so the audit trail always
names a person.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edge.alerts.fields import seconds, text, who
from edge.alerts.headline import headline
from edge.evidence import dumps
from edge.outputs.http_types import Problem, Response

if TYPE_CHECKING:
    from edge.alerts.lifecycle import AlertBook
    from edge.outputs.assets import DescribedAsset
    from edge.store.history import History
    from edge.vision.corrections import Corrections


class AlertRoutes:
    alerts: AlertBook | None
    corrections: Corrections | None
    history: History

    _asset: Callable[[str], DescribedAsset]  # HttpApi's lookup: 404 for an unknown asset

    def _book(self) -> AlertBook:
        if self.alerts is None:
            raise Problem(404, "alerts are not enabled on this board")
        return self.alerts

    def alert_status(self, asset_id: str) -> dict[str, Any] | None:
        return None if self.alerts is None else self.alerts.status(asset_id)

    def list_alerts(self, query: dict[str, str]) -> Response:
        book = self._book()
        asset = self._asset(query["asset"]).id if query.get("asset") else None
        found = book.store.alerts(asset, limit=_limit(query))
        return Response(200, dumps({"alerts": [alert.to_dict() for alert in found]}))

    def list_events(self, query: dict[str, str]) -> Response:
        book = self._book()
        asset = self._asset(query["asset"]).id if query.get("asset") else None
        events = book.store.events(asset, limit=_limit(query))
        return Response(200, dumps({"events": [event.to_dict() for event in events]}))

    def verdict_detail(self, query: dict[str, str], verdict_id: str) -> Response:
        stored = self.history.get(int(verdict_id))
        if stored is None:
            raise Problem(404, f"history has no verdict {verdict_id}")
        body = stored.to_dict()
        del body["frame"]
        body["frame_url"] = None if stored.frame is None else f"/api/verdicts/{stored.id}/frame.jpg"
        actions = None if self.alerts is None else self.alerts.settings.actions
        body["headline"] = headline(stored.verdict, actions).to_dict()
        marks = [] if self.corrections is None else self.corrections.list(stored.verdict.asset_id)
        body["corrections"] = [m for m in marks if m["detail"].get("verdict_id") == stored.id]
        return Response(200, dumps(body))

    # -- writes ----------------------------------------------------------------------------------

    def acknowledge(self, query: dict[str, str], body: dict[str, Any], asset_id: str) -> Response:
        alert = self._book().acknowledge(self._asset(asset_id).id, who(body), text(body, "note"))
        return Response(200, dumps({"alert": alert.to_dict()}))

    def snooze(self, query: dict[str, str], body: dict[str, Any], asset_id: str) -> Response:
        asset = self._asset(asset_id).id
        if body.get("off") is True:
            self._book().unsnooze(asset, who(body))
        else:
            self._book().snooze(asset, who(body), seconds(body, "duration_s"), text(body, "note"))
        return Response(200, dumps(self._book().status(asset)))

    def maintenance(self, query: dict[str, str], body: dict[str, Any], asset_id: str) -> Response:
        asset = self._asset(asset_id).id
        if body.get("on") is False:
            self._book().stop_maintenance(asset, who(body))
        elif body.get("on") is True:
            self._book().start_maintenance(asset, who(body), text(body, "note"), seconds(body, "duration_s"))
        else:
            raise Problem(400, "send {\"on\": true} to start maintenance or {\"on\": false} to stop it")
        return Response(200, dumps(self._book().status(asset)))

    def correct(self, query: dict[str, str], body: dict[str, Any], verdict_id: str) -> Response:
        if self.corrections is None:
            raise Problem(404, "corrections are not enabled on this board")
        label = body.get("label")
        if not isinstance(label, str):
            raise Problem(400, "a correction needs \"label\": \"ok\" or the label it really was")
        done = self.corrections.mark(int(verdict_id), label, who(body), text(body, "note"),
                                     text(body, "severity"))
        return Response(200, dumps(done))

    def undo_correction(self, query: dict[str, str], body: dict[str, Any], ref: str) -> Response:
        if self.corrections is None:
            raise Problem(404, "corrections are not enabled on this board")
        return Response(200, dumps(self.corrections.undo(ref, who(body), text(body, "note"))))


def _limit(query: dict[str, str]) -> int:
    given = query.get("limit", "100")
    if not given.isdigit() or not 1 <= int(given) <= 1000:
        raise Problem(400, f"limit={given!r} must be a whole number from 1 to 1000")
    return int(given)
