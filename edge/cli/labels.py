"""``edgewatch labels list|add|remove``: a bundle's zero-shot labels, changed on the board."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.cli.options import handles
from edge.errors import UsageError


def add_parser(sub: argparse._SubParsersAction, parser_class: type[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("labels", help="List, add or remove a bundle's zero-shot labels on the board.")
    lsub = p.add_subparsers(dest="labels_command", metavar="COMMAND", required=True, parser_class=parser_class)
    listing = lsub.add_parser("list", help="Print each label, its severity and prompts.")
    listing.add_argument("bundle", type=Path)
    handles(listing, "edge.cli.labels:list_labels")
    a = lsub.add_parser(
        "add",
        help="Add a label, embedded with the bundle's INT8 text model (needs --with-text-model at export).",
        description="Embed the prompts with the bundle's text model and tokenizer (no torch), then update the "
        "bundle atomically; its hashes stay valid.",
    )
    a.add_argument("bundle", type=Path, help="Model bundle folder.")
    a.add_argument("--name", required=True, help="Label name, e.g. 'oil leak'.")
    a.add_argument("--severity", choices=["ok", "warning", "fault"], default="warning", help="What it means.")
    a.add_argument("--prompt", action="append", metavar="TEXT",
                   help="A sentence describing it (repeatable); default: three 'a photo of NAME' variants.")
    handles(a, "edge.cli.labels:add")
    r = lsub.add_parser("remove", help="Remove a label (needs no text model).")
    r.add_argument("bundle", type=Path, help="Model bundle folder.")
    r.add_argument("--name", required=True, help="Label to remove.")
    handles(r, "edge.cli.labels:remove")
    for command in (a, r):  # a signed bundle is never left with a signature that no longer matches
        command.add_argument("--resign", type=Path, metavar="KEY", help="Private key that signs the changed "
                             "manifest (required for a signed bundle; $EDGEWATCH_KEY_PASSPHRASE as for 'bundle sign').")


def list_labels(args: argparse.Namespace) -> int:
    from edge.bundle.load import load_bundle

    manifest = load_bundle(args.bundle, verify=False).manifest
    if manifest.labels is None:
        print(f"{args.bundle}: image-only bundle, no zero-shot labels")
        return 0
    for entry in manifest.labels.entries:
        print(f"{entry.name:<28} {entry.severity:<8} {len(entry.prompts)} prompt(s): {entry.prompts[0]}")
    if manifest.text_model is None:
        print("no text model in this bundle: labels are fixed at export (export with --with-text-model to add "
              "them on the board)")
    return 0


def add(args: argparse.Namespace) -> int:
    from edge.bundle.manifest import Label
    from edge.vision.labels import add_label, default_prompts

    name = args.name.strip()
    if not name:
        raise UsageError("--name must not be empty")
    label = Label(name=name, severity=args.severity, prompts=args.prompt or default_prompts(name))
    manifest = add_label(args.bundle, label, args.resign)
    assert manifest.labels is not None
    print(f"{args.bundle}: added '{name}' ({args.severity}, {len(label.prompts)} prompt(s)); "
          f"{len(manifest.labels.entries)} labels{_signed(args)}. Running services use it after "
          "'systemctl reload edgewatch'.")
    return 0


def remove(args: argparse.Namespace) -> int:
    from edge.vision.labels import remove_label

    manifest = remove_label(args.bundle, args.name, args.resign)
    assert manifest.labels is not None
    print(f"{args.bundle}: removed '{args.name}'; {len(manifest.labels.entries)} labels left{_signed(args)}. "
          "Running services use the change after 'systemctl reload edgewatch'.")
    return 0


def _signed(args: argparse.Namespace) -> str:
    return f", signed again with {args.resign}" if args.resign is not None else ""
