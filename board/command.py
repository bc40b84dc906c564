"""``edgewatch image build`` and ``edgewatch image wheelhouse``: arguments in, one summary line out."""

from __future__ import annotations

import argparse
import re

from board.build import BuildRequest, build
from board.bundle import write as write_bundle
from board.inject import Payload
from board.wheelhouse import TargetPython
from board.wheelhouse import build as build_wheelhouse
from edge.errors import UsageError


def image_build(args: argparse.Namespace) -> int:
    if not args.config.is_file():
        raise UsageError(f"--config {args.config}: no such file")
    if args.ab != (args.keyring is not None):
        raise UsageError("--ab and --keyring CA.pem go together: the A/B image trusts bundles signed under that CA")
    request = BuildRequest(out=args.out, payload=Payload(args.config, tuple(args.with_folder)), extras=args.extras,
                           serial_autologin=args.serial_autologin, keep_root=args.keep_root, base=args.base,
                           compress=args.compress, ab_keyring=args.keyring if args.ab else None)

    built = build(request)
    size_mib = built.image.stat().st_size / 2**20
    steps = ", ".join(f"{step} {seconds:.0f} s" for step, seconds in built.seconds.items())
    boot = f"; kernel {built.kernel.name}, initramfs {built.initrd.name}" if built.kernel and built.initrd else ""
    print(f"{built.image}: {size_mib:.0f} MiB ({steps}), wheelhouse {built.wheelhouse}{boot}")
    return 0


def image_bundle(args: argparse.Namespace) -> int:
    out = write_bundle(args.image, args.key, args.cert, args.out, args.version, args.compression)
    print(f"{out}: RAUC bundle version {args.version}, {out.stat().st_size / 2**20:.0f} MiB, signed by {args.cert}")
    return 0


def image_wheelhouse(args: argparse.Namespace) -> int:
    match = re.fullmatch(r"(\d+)\.(\d+)", args.python)
    if match is None:
        raise UsageError(f"--python {args.python!r}: give the board's Python as MAJOR.MINOR, e.g. 3.11")
    target = TargetPython(int(match[1]), int(match[2]), args.numpy)
    wheels = build_wheelhouse(args.out, target, args.extras)
    print(f"{args.out}: {len(wheels)} wheels for Python {target.version} on aarch64"
          + (f", numpy pinned to {args.numpy}" if args.numpy else ""))
    return 0
