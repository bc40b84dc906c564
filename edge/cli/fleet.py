"""``edgewatch fleet ...``: commands for the monitoring host of a fleet of boards, and the one a board
runs once to install its first release."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.cli.options import add_config, handles


def add_parser(sub: argparse._SubParsersAction, parser_class: type[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("fleet", help="Many boards: Prometheus targets, model and config rollouts with a canary.")
    fsub = p.add_subparsers(dest="fleet_command", metavar="COMMAND", required=True, parser_class=parser_class)
    t = fsub.add_parser("targets", help="Write Prometheus file_sd targets (board and group labels) from an inventory.")
    t.add_argument("--inventory", type=Path, required=True, help="YAML inventory of boards (docs/fleet.md).")
    t.add_argument("--out", type=Path, required=True,
                   help="file_sd JSON file to write (replaced atomically; Prometheus re-reads it).")
    handles(t, "edge.cli.fleet:targets")
    i = fsub.add_parser("install", help="On a board: install its first release under <state_dir>/fleet.")
    add_config(i, "The board's config (fleet section on).", required=True)
    i.add_argument("--bundle", type=Path, required=True, help="Bundle folder of the first release.")
    i.add_argument("--version", required=True, help="Its version, as later rollouts name it.")
    handles(i, "edge.cli.fleet:install")
    r = fsub.add_parser("rollout", help="Publish a release to one canary board, then to its group (docs/fleet.md).")
    r.add_argument("--bundle", type=Path, required=True, help="Bundle folder to release (signed or not).")
    r.add_argument("--config-overrides", type=Path,
                   help="YAML of config keys the boards take from this release (thresholds, intervals, fusion, "
                        "escalation budget; docs/fleet.md); without it a release carries none.")
    r.add_argument("--version", required=True, help="Release version: letters, digits, '.', '_', '+', '-'.")
    r.add_argument("--key", type=Path, required=True, help="Ed25519 private key (edgewatch bundle keygen).")
    r.add_argument("--publish-dir", type=Path, required=True, help="Folder your HTTP(S) server serves.")
    r.add_argument("--base-url", required=True, help="URL of --publish-dir as the boards reach it.")
    r.add_argument("--inventory", type=Path, required=True, help="The inventory of 'fleet targets'.")
    r.add_argument("--group", required=True, help="Inventory group to update.")
    r.add_argument("--canary", help="Board tried first (default: the group's first board in the inventory).")
    r.add_argument("--mqtt", type=Path, required=True,
                   help="YAML with the broker settings, as the boards' outputs.mqtt (host, port, tls, username, ...).")
    r.add_argument("--canary-timeout-s", type=float, default=600.0, help="How long the canary may take.")
    r.add_argument("--group-timeout-s", type=float, default=1800.0, help="How long the rest of the group may take.")
    handles(r, "edge.cli.fleet:rollout")
    s = fsub.add_parser("system-rollback",
                        help="On an A/B board (the health gate runs it): note the slots RAUC reports bad, each "
                             "failed install once, for edgewatch_system_rollbacks_total.")
    add_config(s, "The board's config (its state_dir keeps the note).", required=True)
    s.add_argument("--status", type=Path, default=None,
                   help="Output of 'rauc status --detailed --output-format=json' (default: standard input).")
    handles(s, "edge.cli.fleet:system_rollback")


def targets(args: argparse.Namespace) -> int:
    from edge.fleet.targets import load_inventory, write_targets

    inventory = load_inventory(args.inventory)
    write_targets(inventory, args.out)
    print(f"{len(inventory.boards)} boards -> {args.out}")
    return 0


def install(args: argparse.Namespace) -> int:
    from edge.bundle.load import load_bundle
    from edge.errors import UsageError
    from edge.fleet.layout import Layout
    from edge.fleet.release import check_version
    from edge.settings import load_config

    config = load_config(args.config)
    if config.model is None:
        raise UsageError(f"{args.config} has no model section: a release is a model bundle")
    load_bundle(args.bundle, verify=True, trusted_keys=config.model.trusted_keys)
    layout = Layout(config.state_dir)
    layout.install(args.bundle, check_version(args.version))
    print(f"release {args.version} installed; point model.bundle at {layout.current / 'bundle'}")
    return 0


def rollout(args: argparse.Namespace) -> int:
    """Exit 0 when every board of the group is healthy on the release, 1 otherwise."""
    from edge.config.loader import load_model
    from edge.errors import UsageError
    from edge.fleet.rollout import Release, Reports, group_boards, publish_release, rollout, table
    from edge.fleet.targets import load_inventory
    from edge.outputs.config import MqttSettings

    boards = group_boards(load_inventory(args.inventory), args.group)
    canary = args.canary or boards[0]
    if canary not in boards:
        raise UsageError(f"--canary {canary} is not in group '{args.group}' ({', '.join(boards)})")
    release = Release(args.bundle, args.version, args.key, args.publish_dir, args.base_url, args.config_overrides)
    archive, message = publish_release(release)
    print(f"release {args.version}: {archive}")
    reports = Reports(load_model(args.mqtt, MqttSettings), f"edgewatch-rollout-{args.version}")
    try:
        ok, latest = rollout(release, message, reports, boards, args.group, canary, args.canary_timeout_s,
                             args.group_timeout_s)
        print(table(latest, boards))
    finally:
        reports.close()
    print(f"rollout {args.version}: {'done, every board healthy' if ok else 'FAILED'}")
    return 0 if ok else 1


def system_rollback(args: argparse.Namespace) -> int:
    """Print a ``ROLLBACK:`` line for a rollback not noted before; exit 0 (2 for a status that is not RAUC's)."""
    import json
    import sys
    import time

    from edge.errors import UsageError
    from edge.fleet.system_rollbacks import note
    from edge.settings import load_config

    config = load_config(args.config)
    source = "standard input" if args.status is None else str(args.status)
    try:
        text = sys.stdin.read() if args.status is None else args.status.read_text(encoding="utf-8")
        new = note(config.state, json.loads(text), time.time())
    except (OSError, ValueError) as exc:
        raise UsageError(f"rauc status from {source}: {exc}") from exc
    if new is not None:
        print(f"ROLLBACK: {new.describe()}: that update did not pass the health gate; the previous slot runs")
    return 0
