"""``edgewatch labels list|add|remove``: a bundle's zero-shot labels, changed on the board."""

from __future__ import annotations

import argparse

from edge.bundle.load import load_bundle
from edge.bundle.manifest import Label
from edge.errors import UsageError
from edge.vision.labels import add_label, default_prompts, remove_label


def list_labels(args: argparse.Namespace) -> int:
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
    manifest = remove_label(args.bundle, args.name, args.resign)
    assert manifest.labels is not None
    print(f"{args.bundle}: removed '{args.name}'; {len(manifest.labels.entries)} labels left{_signed(args)}. "
          "Running services use the change after 'systemctl reload edgewatch'.")
    return 0


def _signed(args: argparse.Namespace) -> str:
    return f", signed again with {args.resign}" if args.resign is not None else ""
