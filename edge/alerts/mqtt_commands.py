"""Commands arriving over MQTT (Home Assistant's buttons and switch, or any client): a strict
schema per command, then the ``AlertBook`` action.

Anyone who may publish on the broker may send these, so a payload is either one of the few plain
forms Home Assistant sends or a JSON object with only the fields the command takes, each checked
as on the HTTP API (``edge.alerts.fields``). Anything else is refused with one log line and does
nothing: a malformed payload never counts as "off".

    check, escalate   empty or PRESS; JSON {"by"}
    acknowledge       empty, PRESS or a name; JSON {"by", "note"}
    snooze            empty or PRESS (the default length), seconds (3600) or OFF;
                      JSON {"duration_s", "by", "note"} or {"off": true, "by"}
    maintenance       ON or OFF; JSON {"on": true|false, "by", "note", "duration_s"}

Without a name the actor is "mqtt" (Home Assistant's buttons send a fixed payload).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from edge.alerts.fields import MAX_TEXT, FieldError, json_object, only, seconds, switch, text
from edge.alerts.lifecycle import AlertBook
from edge.errors import ActionRefused

log = logging.getLogger(__name__)

DEFAULT_ACTOR = "mqtt"
MAX_PAYLOAD_BYTES = 4096  # a name and a note of 500 characters each fit, in any script
PRESS = ("", "PRESS")
_KEYS = {
    "check": ("by",),
    "escalate": ("by",),
    "acknowledge": ("by", "note"),
    "snooze": ("by", "note", "duration_s", "off"),
    "maintenance": ("by", "note", "duration_s", "on"),
}


@dataclass(frozen=True)
class Command:
    """One understood command: ``on`` False ends a snooze or stops maintenance."""

    name: str
    by: str = DEFAULT_ACTOR
    note: str | None = None
    duration_s: float | None = None
    on: bool = True


def parse(name: str, payload: bytes) -> Command:
    """The payload of ``<asset>/<name>/set`` -> a Command; ``FieldError`` says what is wrong."""
    if name not in _KEYS:
        raise FieldError(f"no command {name!r}")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise FieldError(f"payload of {len(payload)} bytes; at most {MAX_PAYLOAD_BYTES}")
    try:
        plain = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise FieldError("payload is not UTF-8 text") from None
    if plain.startswith("{"):
        body = json_object(payload)
        only(body, _KEYS[name])
        return _from_json(name, body)
    return _from_text(name, plain)


def _from_json(name: str, body: dict[str, object]) -> Command:
    by = text(body, "by") or DEFAULT_ACTOR
    note = text(body, "note")
    if name == "maintenance":
        on = switch(body, "on")
        if on is None:
            raise FieldError('maintenance needs "on": true or "on": false')
        return Command(name, by, note, seconds(body, "duration_s"), on)
    if name == "snooze":
        return Command(name, by, note, seconds(body, "duration_s"), on=switch(body, "off") is not True)
    return Command(name, by, note)


def _from_text(name: str, plain: str) -> Command:
    word = plain.upper()
    if name in ("check", "escalate") and word in PRESS:
        return Command(name)
    if name == "acknowledge":
        if len(plain) > MAX_TEXT:
            raise FieldError(f"a name is at most {MAX_TEXT} characters")
        return Command(name, DEFAULT_ACTOR if word in PRESS else plain)
    if name == "snooze":
        if word in PRESS:
            return Command(name)
        if word == "OFF":
            return Command(name, on=False)
        try:
            duration_s = float(plain)
        except ValueError:
            raise FieldError("snooze takes a number of seconds, OFF or a JSON object") from None
        if not math.isfinite(duration_s):
            raise FieldError("snooze takes a finite number of seconds")
        return Command(name, duration_s=duration_s)
    if name == "maintenance" and word in ("ON", "OFF"):
        return Command(name, on=word == "ON")
    raise FieldError(f"{name} does not take {plain[:40]!r}")


def apply(book: AlertBook, asset: str, command: Command) -> None:
    """Carry out an alert command; an action that does not apply now is logged, never raised."""
    try:
        if command.name == "acknowledge":
            book.acknowledge(asset, command.by, command.note)
        elif command.name == "snooze" and command.on:
            book.snooze(asset, command.by, command.duration_s, command.note)
        elif command.name == "snooze":
            book.unsnooze(asset, command.by)
        elif command.name == "maintenance" and command.on:
            book.start_maintenance(asset, command.by, command.note, command.duration_s)
        elif command.name == "maintenance":
            book.stop_maintenance(asset, command.by)
    except ActionRefused as exc:
        log.warning("MQTT %s for %s not done: %s", command.name, asset, exc)
