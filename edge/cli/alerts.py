"""``edgewatch alerts ...``: the technician's actions from a shell (the same as the status page's).

Writes go to ``<state_dir>/alerts.sqlite3`` beside a running service (SQLite WAL: safe together);
the service's notifier sends what they queue on its next round (within half a minute).
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone
from typing import Any

from edge.cli.options import add_config, handles
from edge.logs import escape_controls
from edge.store.layout import open_history


def add_parser(sub: argparse._SubParsersAction, parser_class: type[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("alerts", help="Alerts: list, acknowledge, snooze, maintenance, correct a verdict, undo, log.")
    asub = p.add_subparsers(dest="alerts_command", metavar="COMMAND", required=True, parser_class=parser_class)

    def command(name: str, help_text: str, who: bool = True) -> argparse.ArgumentParser:
        a = asub.add_parser(name, help=help_text)
        add_config(a, "Config file (for the state folder).", installed=True)
        handles(a, "edge.cli.alerts:alerts")
        if who:
            a.add_argument("--by", required=True, help="Who does it (kept in the audit trail).")
            a.add_argument("--note", help="Why, or what was done.")
        return a

    a = command("list", "Each asset's open alert, snooze and maintenance.", who=False)
    a.add_argument("--json", action="store_true", help="Print JSON.")
    command("ack", "Acknowledge an asset's raised alert.").add_argument("asset")
    a = command("snooze", "Mute an asset's verdict notifications for a while.")
    a.add_argument("asset")
    a.add_argument("--for", dest="duration", help="How long, e.g. 30m, 2h (default: alerts.snooze_default_s).")
    a.add_argument("--off", action="store_true", help="End the snooze.")
    a = command("maintenance", "Start or stop planned maintenance: no alerts, escalations or learning.")
    a.add_argument("asset")
    a.add_argument("state", choices=["on", "off"])
    a.add_argument("--for", dest="duration", help="Ends by itself after this long, e.g. 4h (default: until off).")
    a = command("correct", "Mark a verdict wrong: it was ok, or it was <label>.")
    a.add_argument("verdict_id", type=int)
    a.add_argument("--label", required=True, help="'ok' or what it really was, e.g. 'belt wear'.")
    a.add_argument("--severity", choices=["warning", "fault"], help="Of a fault label (default: fault).")
    a = command("undo", "Undo a correction (by its ref, correction-<verdict id>, or the verdict id).")
    a.add_argument("ref")
    a = command("log", "The audit trail: transitions and people's actions, newest first.", who=False)
    a.add_argument("--asset", help="Only this asset.")
    a.add_argument("--limit", type=int, default=50, help="At most this many entries.")
    a.add_argument("--json", action="store_true", help="Print JSON.")


def alerts(args: argparse.Namespace) -> int:
    from edge.service.alerts import open_book
    from edge.settings import load_config

    config = load_config(args.config)
    book = open_book(config)
    try:
        command = args.alerts_command
        if command in ("list", "log"):
            return _show(book, config, args)
        if command == "ack":
            done: Any = book.acknowledge(args.asset, args.by, args.note).to_dict()
        elif command == "snooze":
            done = (book.unsnooze(args.asset, args.by) if args.off
                    else book.snooze(args.asset, args.by, _seconds(args.duration), args.note)).__dict__
        elif command == "maintenance":
            done = (book.start_maintenance(args.asset, args.by, args.note, _seconds(args.duration))
                    if args.state == "on" else book.stop_maintenance(args.asset, args.by)).__dict__
        else:
            done = _correct(book, config, args)
    finally:
        book.store.close()
    print(json.dumps(done, indent=2))
    return 0


def _correct(book: Any, config: Any, args: argparse.Namespace) -> dict[str, Any]:
    from edge.service.alerts import build_corrections
    from edge.service.wiring import load_encoder

    history = open_history(config.state, config.history)
    try:
        encoder = load_encoder(config) if args.alerts_command == "correct" else None
        corrections = build_corrections(config, history, book.store, encoder)
        if args.alerts_command == "correct":
            return corrections.mark(args.verdict_id, args.label, args.by, args.note, args.severity)
        return corrections.undo(args.ref, args.by, args.note)
    finally:
        history.close()


def _show(book: Any, config: Any, args: argparse.Namespace) -> int:
    if args.alerts_command == "list":
        found = [book.status(asset.id) for asset in config.assets]
        print(json.dumps(found, indent=2) if args.json
              else "\n".join(escape_controls(_status_line(s)) for s in found))
        return 0
    if args.limit < 1:
        from edge.errors import UsageError

        raise UsageError("--limit must be at least 1")
    events = book.store.events(args.asset, limit=args.limit)
    if args.json:
        print(json.dumps([e.to_dict() for e in events], indent=2))
    else:
        for e in events:
            who = f" by {e.actor}" if e.actor else ""
            print(escape_controls(f"{_utc(e.at)}  {e.asset:<16} {e.action}{who}{f': {e.note}' if e.note else ''}"))
    return 0


def _status_line(status: dict[str, Any]) -> str:
    alert = status["alert"]
    what = "no open alert" if alert is None else f"{alert['state']} {alert['condition']}: {alert['headline']}"
    if alert is not None and alert["state"] == "acknowledged":
        what += f" (by {alert['acknowledged_by']})"
    mode = "" if status["mode"] == "normal" else f" [{status['mode']}]"
    return f"{status['asset']:<16} {what}{mode}"


def _seconds(duration: str | None) -> float | None:
    """'30m', '2h', '1d' -> seconds (the durations ``--since`` takes)."""
    if duration is None:
        return None
    from edge.errors import UsageError
    from edge.store.history import parse_since

    now = time.time()
    try:
        seconds = now - parse_since(duration, now)
    except ValueError as exc:
        raise UsageError(f"--for {duration!r} is not a duration such as 30m, 2h or 1d") from exc
    if not 0 < seconds < 366 * 86400:
        raise UsageError(f"--for {duration!r} is not a duration such as 30m, 2h or 1d")
    return seconds


def _utc(timestamp_s: float) -> str:
    return datetime.fromtimestamp(timestamp_s, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
