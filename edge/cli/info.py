"""Subcommands that inspect things: version, config check, bundle inspect|verify|keygen|sign."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge import __version__
from edge.cli.options import handles


def add_parser(sub: argparse._SubParsersAction, parser_class: type[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bundle", help="Inspect, verify or sign a model bundle; make a signing key.")
    bsub = p.add_subparsers(dest="bundle_command", metavar="COMMAND", required=True, parser_class=parser_class)
    p = bsub.add_parser("inspect", help="Print a human summary of a bundle.")
    p.add_argument("bundle", type=Path)
    handles(p, "edge.cli.info:bundle_inspect")
    p = bsub.add_parser("verify", help="Recompute every hash (and check the signature); exit 1 naming what is wrong.")
    p.add_argument("bundle", type=Path)
    p.add_argument("--trusted-key", type=Path, action="append", default=[], metavar="PUB",
                   help="A public key the signature must come from (repeat for several); as 'model.trusted_keys'.")
    handles(p, "edge.cli.info:bundle_verify")
    p = bsub.add_parser("keygen", help="Make an Ed25519 signing key KEY and its public key KEY.pub.")
    p.add_argument("key", type=Path, help="Private key file to create (kept on the workstation, mode 0600).")
    handles(p, "edge.cli.info:bundle_keygen")
    p = bsub.add_parser("sign", help="Sign a bundle's manifest (which holds every file's hash): writes manifest.sig.")
    p.add_argument("bundle", type=Path)
    p.add_argument("--key", required=True, type=Path, help="Private key file from 'edgewatch bundle keygen'.")
    handles(p, "edge.cli.info:bundle_sign")

    p = sub.add_parser("config", help="Validate a config file.")
    csub = p.add_subparsers(dest="config_command", metavar="COMMAND", required=True, parser_class=parser_class)
    p = csub.add_parser("check", help="Print the resolved config, or every error with its key path.")
    p.add_argument("file", type=Path)
    handles(p, "edge.cli.info:config_check")

    handles(sub.add_parser("version", help="Print the edgewatch version."), "edge.cli.info:version")


def version(args: argparse.Namespace) -> int:
    print(f"edgewatch {__version__}")
    return 0


def config_check(args: argparse.Namespace) -> int:
    from edge.settings import load_config

    config = load_config(args.file)
    if config.alerts.notify:  # what apprise would refuse at start, refused here
        from edge.alerts.notifier import check_urls

        check_urls([url.get_secret_value() for url in config.alerts.notify])
    print(json.dumps(config.model_dump(mode="json"), indent=2))
    print(f"{args.file}: ok ({len(config.assets)} asset(s))")
    return 0


def bundle_inspect(args: argparse.Namespace) -> int:
    from edge.bundle.load import describe, load_bundle

    print(describe(load_bundle(args.bundle, verify=False)))
    return 0


def bundle_verify(args: argparse.Namespace) -> int:
    from edge.bundle.load import load_bundle

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
