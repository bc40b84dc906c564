"""The HTTP API's alert routes: read alerts and the audit trail, and the technician's actions
(acknowledge, snooze, maintenance, mark a verdict wrong, undo). A mixin of ``HttpApi``: routing,
auth and cross-site checks stay in ``http_api.py``; these handlers only parse and delegate.

Every write takes a small JSON object; ``by`` (who did it) is required, so the audit trail always
names a person.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edge.alerts.headline import headline
from edge.outputs.http_types import Problem, Response
from edge.outputs.messages import dumps

if TYPE_CHECKING:
    from edge.alerts.corrections import Corrections
    from edge.alerts.lifecycle import AlertBook
    from edge.config.root import AssetConfig
    from edge.store.history import History

MAX_TEXT = 500


class AlertRoutes:
    alerts: AlertBook | None
    corrections: Corrections | None
    history: History

    _asset: Callable[[str], AssetConfig]  # HttpApi's lookup: 404 for an unknown asset

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
        alert = self._book().acknowledge(self._asset(asset_id).id, _who(body), _text(body, "note"))
        return Response(200, dumps({"alert": alert.to_dict()}))

    def snooze(self, query: dict[str, str], body: dict[str, Any], asset_id: str) -> Response:
        asset = self._asset(asset_id).id
        if body.get("off") is True:
            self._book().unsnooze(asset, _who(body))
        else:
            self._book().snooze(asset, _who(body), _seconds(body, "duration_s"), _text(body, "note"))
        return Response(200, dumps(self._book().status(asset)))

    def maintenance(self, query: dict[str, str], body: dict[str, Any], asset_id: str) -> Response:
        asset = self._asset(asset_id).id
        if body.get("on") is False:
            self._book().stop_maintenance(asset, _who(body))
        elif body.get("on") is True:
            self._book().start_maintenance(asset, _who(body), _text(body, "note"), _seconds(body, "duration_s"))
        else:
            raise Problem(400, "send {\"on\": true} to start maintenance or {\"on\": false} to stop it")
        return Response(200, dumps(self._book().status(asset)))

    def correct(self, query: dict[str, str], body: dict[str, Any], verdict_id: str) -> Response:
        if self.corrections is None:
            raise Problem(404, "corrections are not enabled on this board")
        label = body.get("label")
        if not isinstance(label, str):
            raise Problem(400, "a correction needs \"label\": \"ok\" or the label it really was")
        done = self.corrections.mark(int(verdict_id), label, _who(body), _text(body, "note"),
                                     _text(body, "severity"))
        return Response(200, dumps(done))

    def undo_correction(self, query: dict[str, str], body: dict[str, Any], ref: str) -> Response:
        if self.corrections is None:
            raise Problem(404, "corrections are not enabled on this board")
        return Response(200, dumps(self.corrections.undo(ref, _who(body), _text(body, "note"))))


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, f"the request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Problem(400, "the request body must be a JSON object")
    return body


def _who(body: dict[str, Any]) -> str:
    who = _text(body, "by")
    if not who:
        raise Problem(400, "say who you are: \"by\": \"<name>\" (it goes into the audit trail)")
    return who


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise Problem(400, f"\"{key}\" must be text of at most {MAX_TEXT} characters")
    return value.strip()


def _seconds(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Problem(400, f"\"{key}\" must be a number of seconds")
    return float(value)


def _limit(query: dict[str, str]) -> int:
    text = query.get("limit", "100")
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise Problem(400, f"limit={text!r} must be a whole number from 1 to 1000")
    return int(text)
