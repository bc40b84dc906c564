"""Subcommands that inspect things: version, config check, bundle inspect/verify."""

from __future__ import annotations

import argparse
import json

from edge import __version__
from edge.bundle.load import describe, load_bundle
from edge.settings import load_config


def version(args: argparse.Namespace) -> int:
    print(f"edgewatch {__version__}")
    return 0


def config_check(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    if config.alerts.notify:  # what apprise would refuse at start, refused here
        from edge.alerts.notifier import check_urls

        check_urls([url.get_secret_value() for url in config.alerts.notify])
    print(json.dumps(config.model_dump(mode="json"), indent=2))
    print(f"{args.file}: ok ({len(config.assets)} asset(s))")
    return 0


def bundle_inspect(args: argparse.Namespace) -> int:
    print(describe(load_bundle(args.bundle, verify=False)))
    return 0


def bundle_verify(args: argparse.Namespace) -> int:
    bundle = load_bundle(args.bundle, verify=True, trusted_keys=args.trusted_key)
    signed = ", signature by a trusted key" if args.trusted_key else ""
    print(f"{args.bundle}: ok ({len(bundle.manifest.files)} files verified{signed})")
    return 0


def bundle_keygen(args: argparse.Namespace) -> int:
    from edge.bundle import signing

    key_id = signing.generate_key(args.key)
    print(f"{args.key}: signing key {key_id} (keep it off the boards); public key {args.key}.pub "
          "goes in each board's 'model.trusted_keys'")
    return 0


def bundle_sign(args: argparse.Namespace) -> int:
    """Sign after checking every hash, so a signature never vouches for a damaged bundle."""
    from edge.bundle import signing
    from edge.bundle.load import read_manifest, read_manifest_bytes, verify_files

    private_key = signing.load_private_key(args.key)
    data = read_manifest_bytes(args.bundle)
    verify_files(args.bundle, read_manifest(args.bundle, data))  # the very bytes that get signed
    key_id = signing.sign_manifest(args.bundle, data, private_key)
    print(f"{args.bundle}: signed by key {key_id} ({args.bundle / signing.SIGNATURE_NAME})")
    return 0
