"""Alert commands arriving over MQTT (Home Assistant's buttons and switch, or any client) -> AlertBook.

Payloads are forgiving, for hand-made automations: a plain name acknowledges as that person, a
number snoozes for that many seconds, ON/OFF toggles maintenance; a JSON object gives every field
({"by", "note", "duration_s", "on", "off"}). Without a name the actor is "mqtt" (Home Assistant's
buttons send a fixed payload).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from edge.alerts.lifecycle import ActionRefused, AlertBook

log = logging.getLogger(__name__)

DEFAULT_ACTOR = "mqtt"


def parse_payload(payload: bytes) -> dict[str, Any]:
    """A command payload -> fields: JSON objects as they are, plain text as ``text``."""
    text = payload.decode("utf-8", "replace").strip()
    try:
        value = json.loads(text)
    except ValueError:
        return {"text": text}
    return value if isinstance(value, dict) else {"text": text}


def apply(book: AlertBook, asset: str, command: str, payload: bytes) -> None:
    """Carry out one command; an action that does not apply now is logged, never raised."""
    fields = parse_payload(payload)
    text = str(fields.get("text", ""))
    by = str(fields.get("by") or DEFAULT_ACTOR)
    note = fields.get("note")
    try:
        if command == "acknowledge":
            book.acknowledge(asset, by if "by" in fields or not text or text == "PRESS" else text, note)
        elif command == "snooze":
            if fields.get("off") is True or text.upper() == "OFF":
                book.unsnooze(asset, by)
            else:
                seconds = fields.get("duration_s", text or None)
                book.snooze(asset, by, None if seconds is None else float(seconds), note)
        elif command == "maintenance":
            on = fields.get("on", text.upper() in ("ON", "1", "TRUE"))
            if on:
                book.start_maintenance(asset, by, note, fields.get("duration_s"))
            else:
                book.stop_maintenance(asset, by)
    except ActionRefused as exc:
        log.warning("MQTT %s for %s not done: %s", command, asset, exc)
    except (TypeError, ValueError) as exc:
        log.warning("MQTT %s for %s: payload %r not understood (%s)", command, asset, payload[:100], exc)
