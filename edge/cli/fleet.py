"""``edgewatch fleet ...``: commands for the monitoring host of a fleet of boards."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction, parser_class: type[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("fleet", help="Many boards: Prometheus targets from an inventory.")
    fsub = p.add_subparsers(dest="fleet_command", metavar="COMMAND", required=True, parser_class=parser_class)
    t = fsub.add_parser("targets", help="Write Prometheus file_sd targets (board and group labels) from an inventory.")
    t.add_argument("--inventory", type=Path, required=True, help="YAML inventory of boards (docs/fleet.md).")
    t.add_argument("--out", type=Path, required=True,
                   help="file_sd JSON file to write (replaced atomically; Prometheus re-reads it).")


def targets(args: argparse.Namespace) -> int:
    from edge.fleet.targets import load_inventory, write_targets

    inventory = load_inventory(args.inventory)
    write_targets(inventory, args.out)
    print(f"{len(inventory.boards)} boards -> {args.out}")
    return 0
