"""``edgewatch fleet rollout``: one canary board first, then its group, stopping when the canary fails.

::

    pack (bundle + config overrides) and sign, with a new serial, into --publish-dir (served at --base-url)
      -> desired on <prefix>/_fleet/boards/<canary>/desired -> wait: canary healthy on it?
         no  -> clear the canary's override; the group stays on its release; exit 1
         yes -> desired on <prefix>/_fleet/<group>/desired, clear the override
                -> wait until every board of the group reports on it; exit 0 only if all are healthy
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.broker import BrokerSettings, make_client
from edge.bundle.signing import load_private_key
from edge.errors import UsageError
from edge.fleet import link
from edge.fleet.overrides import read_overrides
from edge.fleet.release import desired_message, pack_release
from edge.fleet.targets import Inventory
from edge.logs import escape_controls

log = logging.getLogger(__name__)

TERMINAL = ("healthy", "refused", "rolled_back")
CONNECT_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Release:
    bundle: Path
    version: str
    key: Path
    publish_dir: Path
    base_url: str
    overrides: Path | None = None  # config overrides carried with the bundle (edge.fleet.overrides)


class Reports:
    """The boards' retained ``reported`` messages, newest per board, as they arrive."""

    def __init__(self, settings: BrokerSettings, client_id: str) -> None:
        self.prefix = settings.topic_prefix
        self.latest: dict[str, dict[str, Any]] = {}
        self._changed = threading.Condition()
        self._connected = threading.Event()
        self.client = make_client(settings, client_id)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect_async(settings.host, settings.effective_port, keepalive=settings.keepalive_s)
        self.client.loop_start()
        if not self._connected.wait(CONNECT_TIMEOUT_S):
            self.close()
            raise UsageError(f"cannot reach the MQTT broker at {settings.host}:{settings.effective_port} "
                             f"within {CONNECT_TIMEOUT_S:.0f} s")

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any = None) -> None:
        if not getattr(reason, "is_failure", False):
            client.subscribe(link.reported(self.prefix, "+"), qos=1)
            self._connected.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            document = json.loads(bytes(message.payload).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            log.warning("unreadable report on %s", message.topic)
            return
        if isinstance(document, dict):
            with self._changed:
                self.latest[message.topic.split("/")[-2]] = document
                self._changed.notify_all()

    def publish(self, topic: str, payload: bytes) -> None:
        """Retained, QoS 1, and waited for: the next step may depend on the broker holding it."""
        self.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(CONNECT_TIMEOUT_S)

    def settled(self, board: str, version: str, serial: int) -> dict[str, Any] | None:
        """The board's final report on the message of ``serial`` (an earlier one on the same version, say
        a replay refused, is not an answer to this one)."""
        report = self.latest.get(board)
        if (report is not None and report.get("desired") == version and report.get("desired_serial") == serial
                and report.get("state") in TERMINAL):
            return report
        return None

    def wait(self, boards: Sequence[str], version: str, serial: int, timeout_s: float) -> bool:
        """True when every board reported a final state on that message within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not all(self.settled(board, version, serial) for board in boards):
                left_s = deadline - time.monotonic()
                if left_s <= 0:
                    return False
                self._changed.wait(left_s)
        return True

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def group_boards(inventory: Inventory, group: str) -> list[str]:
    boards = [board.name for board in inventory.boards if board.group == group]
    if not boards:
        raise UsageError(f"no board of the inventory is in group '{group}'")
    return boards


def new_serial() -> int:
    """The publish time in milliseconds: higher than every earlier publish from a clock that is right, and
    needing no counter kept on the workstation (two operators, a reinstalled laptop)."""
    return time.time_ns() // 1_000_000


def publish_release(release: Release) -> tuple[Path, bytes]:
    """Pack and sign the release into the publish folder; return the archive and its desired state."""
    key = load_private_key(release.key)
    overrides = read_overrides(release.overrides) if release.overrides is not None else None
    archive = pack_release(release.bundle, release.version, release.publish_dir, overrides)
    url = f"{release.base_url.rstrip('/')}/{archive.name}"
    return archive, desired_message(release.version, url, archive, key, new_serial())


def rollout(release: Release, message: bytes, reports: Reports, boards: Sequence[str], group: str, canary: str,
            canary_timeout_s: float, group_timeout_s: float) -> tuple[bool, dict[str, dict[str, Any]]]:
    """Canary, then group (see the module docstring): whether every board is healthy on the release, and
    what each board had reported when the rollout ended or stopped."""
    prefix = reports.prefix
    serial = json.loads(message)["serial"]
    log.info("rollout %s: canary %s", release.version, canary)
    reports.publish(link.board_desired(prefix, canary), message)
    canary_ok = reports.wait([canary], release.version, serial, canary_timeout_s)
    report = reports.settled(canary, release.version, serial)
    if not canary_ok or report is None or report["state"] != "healthy":
        seen = dict(reports.latest)  # before the canary, following its group again, reports on that
        reports.publish(link.board_desired(prefix, canary), b"")
        log.error("rollout %s stopped: the canary %s %s", release.version, canary,
                  "did not report in time" if report is None else f"reported {report['state']}")
        return False, seen
    log.info("rollout %s: canary healthy, now group %s (%d boards)", release.version, group, len(boards))
    reports.publish(link.group_desired(prefix, group), message)
    reports.publish(link.board_desired(prefix, canary), b"")  # after the group's: it never sees the old one
    reports.wait(boards, release.version, serial, group_timeout_s)
    ok = all((reports.settled(board, release.version, serial) or {}).get("state") == "healthy" for board in boards)
    return ok, dict(reports.latest)


def table(latest: Mapping[str, Mapping[str, Any]], boards: Sequence[str]) -> str:
    """What each board reported last: one line per board (agreement: the least agreeing asset)."""
    lines = [f"{'board':<20} {'running':<14} {'desired':<14} {'state':<12} {'agreement':<10} reason"]
    for board in boards:
        report = latest.get(board, {})
        cells = [str(report.get(name) or "-") for name in ("running", "desired")]
        state, reason = report.get("state") or "no report", escape_controls(str(report.get("reason") or ""))
        lines.append(f"{board:<20} {cells[0]:<14} {cells[1]:<14} {state!s:<12} {_agreement(report):<10} {reason}")
    return "\n".join(lines)


def _agreement(report: Mapping[str, Any]) -> str:
    """``agreeing/frames`` of the asset whose kept frames the two models judged most differently."""
    figures = report.get("agreement")
    if not isinstance(figures, dict) or not figures:
        return "-"
    try:
        worst = min(figures.values(), key=lambda item: item["agreeing"] / max(item["frames"], 1))
        return f"{int(worst['agreeing'])}/{int(worst['frames'])}"
    except (AttributeError, KeyError, TypeError, ValueError):
        return "?"
