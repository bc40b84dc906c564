"""The workstation's commands besides ``export``: ``bench`` and ``image build|wheelhouse|bundle``.

Declared here so ``edgewatch --help`` lists them; their work lives in the workstation packages
(``bench/``, ``board/``), which edge/ never imports: they are named, and loaded only when run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.cli.options import DEFAULT_CONFIG, add_config, handles


def add_parser(sub: argparse._SubParsersAction, parser_class: type[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bench", help="Benchmark INT8 ONNX vs FP32 ONNX vs PyTorch, and the sensor path.",
                       description="Export, enroll and time every model on every path. The full run (three models, "
                       "30 frames) took 79 minutes on two busy CPU cores (load average 27), --tiny 31 minutes.")
    p.add_argument("--out", type=Path, default=Path("bench-out"), help="Folder for results JSON and Markdown.")
    p.add_argument("--models", default="clip,siglip,efficientnet-lite0", help="Comma-separated models to run.")
    p.add_argument("--tiny", action="store_true", help="2-layer CLIP and SigLIP: a quick run, figures meaningless.")
    p.add_argument("--frames", type=int, default=30, help="Timed frames per model.")
    p.add_argument("--json", action="store_true", help="Print the results as JSON.")
    handles(p, "bench.command:bench")

    p = sub.add_parser("image", help="Build a flashable arm64 image or an offline wheelhouse (workstation, as root).")
    isub = p.add_subparsers(dest="image_command", metavar="COMMAND", required=True, parser_class=parser_class)
    b = isub.add_parser(
        "build",
        help="Write an arm64 disk image with edgewatch installed as a hardened service.",
        description="Build a minimal Debian arm64 system (mmdebstrap, cached in /var/cache/edgewatch-board), "
        "install edgewatch from an aarch64 wheelhouse, your config and its folders, and write a .img.",
    )
    add_config(b, f"Config file; it becomes {DEFAULT_CONFIG}.", required=True)
    b.add_argument("--with", dest="with_folder", action="append", default=[], type=Path, metavar="DIR",
                   help="A folder the config names by relative path (bundle, profiles, frames); repeatable.")
    b.add_argument("--out", required=True, type=Path, help="Image file to write (.img).")
    b.add_argument("--base", type=Path, metavar="IMG",
                   help="Your arm64 image (Raspberry Pi OS Lite, a Jetson or Debian/Ubuntu image) to install into; "
                        "default: a minimal Debian system.")
    b.add_argument("--extras", help="edgewatch extras to install (comma-separated); default cloud,mqtt and what "
                   "the config's plug-ins need. A list lacking a needed extra is refused.")
    b.add_argument("--compress", choices=["xz", "zstd"],
                   help="Write IMG.xz or IMG.zst (Raspberry Pi Imager reads both) instead of the raw image.")
    b.add_argument("--serial-autologin", action="store_true",
                   help="Root shell on the serial console without a password: emulation tests only.")
    b.add_argument("--keep-root", type=Path, metavar="DIR", help="Also keep the image's root folder here.")
    b.add_argument("--ab", action="store_true", help="A/B image for system updates: boot partition, root slots A "
                   "and B, a data partition; RAUC and U-Boot's boot script (docs/fleet.md, System updates).")
    b.add_argument("--keyring", type=Path, metavar="CA.pem", help="With --ab: the CA certificate bundles must be "
                   "signed under; it becomes /etc/rauc/keyring.pem.")
    handles(b, "board.command:image_build")
    w = isub.add_parser(
        "wheelhouse",
        help="Download edgewatch and its dependencies as aarch64 wheels for an offline board.",
        description="Write a folder to install from with 'pip install --no-index --find-links DIR edgewatch'.",
    )
    w.add_argument("--out", required=True, type=Path, help="New folder for the wheels.")
    w.add_argument("--python", default="3.11", help="The board's Python, MAJOR.MINOR (bookworm 3.11, JetPack 6 3.10).")
    w.add_argument("--numpy", metavar="VERSION",
                   help="The board's apt numpy (Raspberry Pi OS: python3-numpy); picamera2 needs exactly it.")
    w.add_argument("--extras", default="cloud,mqtt", help="edgewatch extras to include (comma-separated).")
    handles(w, "board.command:image_wheelhouse")

    u = isub.add_parser(
        "bundle", help="Write a signed RAUC update bundle (.raucb) from an image built with --ab.",
        description="Cut the root slot out of an A/B image and sign it with 'rauc bundle' (verity format).")
    u.add_argument("--image", required=True, type=Path, help="The .img written by 'edgewatch image build --ab'.")
    u.add_argument("--key", required=True, type=Path, help="The signing key (PEM).")
    u.add_argument("--cert", required=True, type=Path,
                   help="The signing certificate (PEM), issued under the keyring's CA.")
    u.add_argument("--version", required=True, help="The version the bundle carries (rauc info, rauc status).")
    u.add_argument("--out", required=True, type=Path, help="Bundle file to write (.raucb).")
    u.add_argument("--compression", choices=("gzip", "lz4", "xz"), default="gzip",
                   help="mksquashfs compressor: gzip (default), xz (smallest), lz4 (fastest to build and install).")
    handles(u, "board.command:image_bundle")
