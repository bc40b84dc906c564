"""The fields of a technician's action, checked the same way whichever channel brings it (HTTP or
MQTT): who and a note as short text, durations as finite seconds, JSON objects of bounded depth.

A bad field raises ``FieldError`` (a ``ValueError``) naming the field; the HTTP API answers 400
with it, the MQTT channel logs it and does nothing.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_TEXT = 500  # characters of "by" and "note"
MAX_DEPTH = 8  # nesting of a JSON body: an action is one flat object; 8,000 levels overflowed the parser


class FieldError(ValueError):
    """A field of an action that is missing, of the wrong type or too long."""


def json_object(raw: bytes) -> dict[str, Any]:
    """A JSON object from a request or message body; anything else is a ``FieldError``."""
    try:
        value = json.loads(raw or b"{}")
    except RecursionError:
        raise FieldError(f"the body is nested more than {MAX_DEPTH} levels deep") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise FieldError(f"the body is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise FieldError("the body must be a JSON object")
    if _depth(value) > MAX_DEPTH:
        raise FieldError(f"the body is nested more than {MAX_DEPTH} levels deep")
    return value


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion (1 for a flat object)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def text(body: dict[str, Any], key: str) -> str | None:
    """An optional text field: None when absent or empty, stripped, at most ``MAX_TEXT`` characters."""
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise FieldError(f"\"{key}\" must be text of at most {MAX_TEXT} characters")
    return value.strip()


def who(body: dict[str, Any]) -> str:
    """The required ``by``: the audit trail always names a person."""
    name = text(body, "by")
    if not name:
        raise FieldError("say who you are: \"by\": \"<name>\" (it goes into the audit trail)")
    return name


def seconds(body: dict[str, Any], key: str) -> float | None:
    """An optional duration: a finite number (not a boolean); the action bounds its range."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FieldError(f"\"{key}\" must be a number of seconds")
    return float(value)


def switch(body: dict[str, Any], key: str) -> bool | None:
    """An optional on/off field: exactly true or false (the text "OFF" is not false)."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise FieldError(f"\"{key}\" must be true or false, not {json.dumps(value)[:40]}")
    return value


def only(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """Refuse keys an action does not know (a typo would otherwise be silently ignored)."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise FieldError(f"unknown field(s) {', '.join(repr(k[:40]) for k in unknown[:5])}; "
                         f"this action takes {', '.join(allowed)}")
