"""System (A/B slot) rollbacks, noted once each so ``/metrics`` can count them.

When a system update does not pass its health gate, the bootloader's retry counter runs out and the
other slot boots; RAUC then reports the updated slot, the one it activated last, as ``bad``. The
health gate of the slot that came back pipes ``rauc status --detailed --output-format=json`` into
``edgewatch fleet system-rollback``, which keeps that slot's install here, in the state folder on
the data partition. A rollback is the pair (slot, the install RAUC records for it: time and bundle
version), so the same one is not counted again on the next boot, and a later failed install of
that slot is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from edge.errors import StorageError
from edge.evidence import iso_time
from edge.files import write_atomically
from edge.store.layout import StateFolder


@dataclass(frozen=True)
class SystemRollback:
    slot: str  # RAUC's bootname: A or B
    version: str | None  # the bundle version installed there, when RAUC recorded one
    installed: str | None  # when RAUC installed it (ISO 8601, RAUC's own text)
    noticed_at: str = ""

    def same_install(self, other: SystemRollback) -> bool:
        return (self.slot, self.version, self.installed) == (other.slot, other.version, other.installed)

    def describe(self) -> str:
        what = f"version {self.version}" if self.version else "an unnamed version"
        when = f", installed {self.installed}" if self.installed else ""
        return f"slot {self.slot} is marked bad ({what}{when})"


def rolled_back(status: Any) -> SystemRollback | None:
    """The slot ``rauc status --detailed --output-format=json`` shows the bootloader went back from.

    That is the slot activated last (RAUC's ``activated`` time, set when an install completes and
    makes it the slot to boot) when it is ``bad``: its install completed and was tried, and the
    bootloader came back to the other slot. A slot that is bad because an install into it was
    interrupted, or is running now, is not one: RAUC takes it off the boot order before writing, and
    its last activation is older than the booted slot's. Raises ValueError naming what is missing
    when the text is not RAUC's status shape.
    """
    if not isinstance(status, Mapping) or not isinstance(status.get("slots"), list):
        raise ValueError("not RAUC's status: expected an object with a 'slots' list "
                         "(rauc status --detailed --output-format=json)")
    slots: dict[str, Mapping[str, Any]] = {}
    for item in status["slots"]:
        if not isinstance(item, Mapping):
            raise ValueError(f"not RAUC's status: a slot entry is {type(item).__name__}, not an object")
        for name, slot in item.items():
            if not isinstance(slot, Mapping) or "boot_status" not in slot:
                raise ValueError(f"not RAUC's status: slot {name!r} has no boot_status")
            slots[str(slot.get("bootname") or name)] = slot
    activated = {name: _stamp(slot, "activated") for name, slot in slots.items()}
    if not any(activated.values()):
        return None  # nothing installed by RAUC since the first flash
    last = max(activated, key=lambda name: activated[name])
    slot = slots[last]
    installed = _stamp(slot, "installed")
    if slot["boot_status"] != "bad" or not installed or activated[last] < installed:
        return None
    bundle = (slot.get("slot_status") or {}).get("bundle") or {}
    return SystemRollback(last, bundle.get("version"), installed)


def _stamp(slot: Mapping[str, Any], event: str) -> str:
    """RAUC's time of ``event`` (installed, activated) for a slot, '' when it has none. RAUC writes
    them as ISO 8601 UTC text of one width, so the text orders as the time does."""
    record = (slot.get("slot_status") or {}).get(event) or {}
    return str(record.get("timestamp") or "")


def load(state: StateFolder) -> list[SystemRollback]:
    """The rollbacks noted so far; none when the file is absent."""
    try:
        rows = json.loads(state.system_rollbacks.read_text(encoding="utf-8"))
        return [SystemRollback(**row) for row in rows]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, TypeError) as exc:
        raise StorageError(f"{state.system_rollbacks} is unreadable ({exc}): move it aside to count afresh") from exc


def note(state: StateFolder, status: Any, now: float) -> SystemRollback | None:
    """Keep the rollback ``status`` shows when it was not noted before; return it (None: nothing new)."""
    found = rolled_back(status)
    kept = load(state)
    if found is None or any(found.same_install(k) for k in kept):
        return None
    new = SystemRollback(found.slot, found.version, found.installed, iso_time(now))
    text = json.dumps([asdict(r) for r in [*kept, new]], indent=1)
    try:  # the gate writes as root; the service (its own user) reads it at each scrape
        write_atomically(state.system_rollbacks, text.encode("utf-8"), mode=0o644)
    except OSError as exc:
        raise StorageError(f"cannot note the rollback in {state.system_rollbacks}: {exc}") from exc
    return new


def count(state: StateFolder) -> int:
    """``edgewatch_system_rollbacks_total``: rollbacks noted on this board's data partition."""
    return len(load(state))
