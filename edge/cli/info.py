"""Subcommands that inspect things: version, config check, bundle inspect/verify."""

from __future__ import annotations

import argparse
import json

from edge import __version__
from edge.bundle import describe, load_bundle
from edge.config.root import load_config


def version(args: argparse.Namespace) -> int:
    print(f"edgewatch {__version__}")
    return 0


def config_check(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    print(json.dumps(config.model_dump(mode="json"), indent=2))
    print(f"{args.file}: ok ({len(config.assets)} asset(s))")
    return 0


def bundle_inspect(args: argparse.Namespace) -> int:
    print(describe(load_bundle(args.bundle, verify=False)))
    return 0


def bundle_verify(args: argparse.Namespace) -> int:
    bundle = load_bundle(args.bundle, verify=True)
    print(f"{args.bundle}: ok ({len(bundle.manifest.files)} files verified)")
    return 0
