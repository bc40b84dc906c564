"""``edgewatch run``, ``history``, ``doctor`` and ``install-service``: the on-device commands."""

from __future__ import annotations

import argparse
import functools
import json
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from edge.cli.options import DEFAULT_CONFIG, add_config, handles
from edge.errors import UsageError
from edge.logs import escape_controls, setup_logging

if TYPE_CHECKING:
    from edge.store.history import StoredVerdict


def add_parser(sub: argparse._SubParsersAction, parser_class: type[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run",
        help="Run the monitoring service (what systemd starts).",
        description="Grab frames, read sensors, score, fuse, escalate and publish for every asset "
        "in the config until SIGTERM.",
    )
    add_config(p, required=True)
    p.add_argument("--max-checks", type=int, help="Stop after this many checks in total (testing, demos).")
    handles(p, "edge.cli.service:run")

    p = sub.add_parser("history", help="Read stored verdicts.")
    add_config(p, "Config file (for the state folder).", installed=True)
    p.add_argument("--asset", help="Only this asset.")
    p.add_argument("--since", help="ISO time or a duration such as 2h, 3d.")
    p.add_argument("--limit", type=int, default=100, help="At most this many verdicts, newest first.")
    p.add_argument("--json", action="store_true", help="Print a JSON array on stdout.")
    handles(p, "edge.cli.service:history")

    p = sub.add_parser(
        "doctor", help="Check config, bundle, cameras, sensors, disk, clock and cloud; print a pass/fail table."
    )
    add_config(p, installed=True)
    p.add_argument("--as-service", action="store_true",
                   help="Run the checks under the installed unit's sandbox, as its user (systemd-run; needs root).")
    handles(p, "edge.cli.service:doctor")

    p = sub.add_parser("install-service", help="Install the systemd unit, its device drop-in, user, config skeleton "
                       "and state folder.")
    add_config(p, "Open the devices this config uses (default the installed config).")
    p.add_argument("--dry-run", action="store_true", help="Print what would be done, the unit and the drop-in; "
                   "change nothing.")
    handles(p, "edge.cli.service:install_service")


def run(args: argparse.Namespace) -> int:
    """The service: SIGTERM or SIGINT stop it gracefully (running checks finish), exit 0; SIGHUP
    reloads the config, bundle and profiles (a config that fails its checks is refused)."""
    from edge.fleet.agent import start_agent
    from edge.service.loop import Service
    from edge.service.reload import Reloader, serve
    from edge.service.sdnotify import Notifier
    from edge.service.wiring import build_service
    from edge.settings import Config, load_config

    config = load_config(args.config)
    setup_logging(config.log_level)
    if args.max_checks is not None and args.max_checks < 1:
        raise UsageError("--max-checks must be at least 1")
    notifier = Notifier.from_environment()
    current: list[Service] = []
    stopping: list[bool] = []

    def build(loaded: Config) -> Service:
        setup_logging(loaded.log_level)
        current[:] = [build_service(loaded, max_checks=args.max_checks, notifier=notifier)]
        if agent is not None:
            agent.on_service_started()
        return current[0]

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.append(True)
        if current:
            current[0].request_stop()

    reloader = Reloader(args.config)
    agent = start_agent(config, reloader.reload, functools.partial(load_config, args.config))
    if agent is not None:  # it may have undone a switch a power cut interrupted: the overrides go back too
        config = load_config(args.config)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reloader.on_signal)
    try:
        serve(config, build, reloader, lambda: bool(stopping), None if agent is None else agent.on_start_failed)
    finally:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the reload pipe closes next
        if agent is not None:
            agent.close()
        reloader.close()
        notifier.close()
    return 0


def history(args: argparse.Namespace) -> int:
    from edge.settings import load_config
    from edge.store.history import History, parse_since

    config = load_config(args.config)
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    try:
        since = None if args.since is None else parse_since(args.since, time.time())
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from exc
    path = config.state.history
    if not path.exists():
        print(f"edgewatch: no history yet at {path}", file=sys.stderr)
        stored: list[StoredVerdict] = []
    else:
        with History(path, config.state.frames) as store:
            stored = store.verdicts(asset=args.asset, since=since, limit=args.limit)
    if args.json:
        print(json.dumps([item.to_dict() for item in stored], indent=2))
    else:
        print(format_history(stored))
    return 0


def format_history(stored: list[StoredVerdict]) -> str:
    if not stored:
        return "no verdicts"
    lines = [f"{'id':>6}  {'time (UTC)':<19}  {'asset':<16} {'verdict':<8} {'conf':>5}  reason"]
    for item in stored:
        verdict = item.verdict
        when = datetime.fromtimestamp(verdict.timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        reason = verdict.reasons[0] if verdict.reasons else ""
        flags = (" [escalated]" if verdict.escalated else "") + (" [frame]" if item.frame else "")
        lines.append(f"{item.id:>6}  {when:<19}  {verdict.asset_id:<16} {verdict.condition.value:<8} "
                     f"{verdict.confidence:>5.2f}  {escape_controls(reason)}{flags}")
    return "\n".join(lines)


def doctor(args: argparse.Namespace) -> int:
    """Exit 0 when nothing failed (warnings allowed), 1 otherwise; ``--as-service``: the same checks
    under the installed unit's sandbox, through systemd-run (their table passes straight through)."""
    from edge.cli.doctor import doctor as run_doctor

    if args.as_service:
        import os
        import subprocess

        from edge.service.install import INSTALLED_UNIT
        from edge.service.sandbox import doctor_command

        if not Path("/run/systemd/system").is_dir() or os.geteuid() != 0:
            raise UsageError("--as-service starts a transient systemd unit: run it with sudo on a systemd host")
        return subprocess.run(doctor_command(INSTALLED_UNIT, args.config.absolute()), check=False).returncode

    table, healthy = run_doctor(args.config)
    print(table)
    return 0 if healthy else 1


def install_service(args: argparse.Namespace) -> int:
    """Install (or bring up to date) the unit, user, config skeleton and state folder."""
    import os

    from edge.service.install import Installer

    if not args.dry_run and os.geteuid() != 0:
        raise UsageError("install-service changes /etc and creates a user: run it with sudo (or try --dry-run)")
    installer = Installer(config_path=args.config)
    steps = installer.plan()
    if not steps:
        print("edgewatch service already installed: nothing to do")
    for step in steps:
        print(f"{'would ' if args.dry_run else ''}{step.description}")
    if args.dry_run:
        for path, content in installer.files().items():
            print(f"\n# {path}\n{content}", end="")
    elif steps:
        installer.apply(steps)
        print(f"done: edit {DEFAULT_CONFIG}, run 'edgewatch doctor', then 'sudo systemctl start edgewatch'")
    return 0
