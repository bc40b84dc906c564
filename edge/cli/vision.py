"""``edgewatch enroll``: an asset profile from normal frames (optionally captured first) and labelled examples."""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Mapping
from pathlib import Path

from edge.cli.options import add_config, handles
from edge.errors import InputError, UsageError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
_LABEL_ARG = re.compile(r"^(?P<name>[^:=]+)(?::(?P<severity>ok|warning|fault))?=(?P<folder>.+)$")


def add_parser(sub: argparse._SubParsersAction, parser_class: type[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "enroll",
        help="Build an asset profile from normal frames and labelled examples.",
        description="Embed frames of the machine in good condition (normal baseline) and optional "
        "labelled examples (few-shot), calibrate thresholds, and write a profile file atomically.",
    )
    p.add_argument("--bundle", type=Path, help="Model bundle folder (default: the model in --config).")
    p.add_argument("--normal", required=True, type=Path, help="Folder of frames of the machine in good condition "
                   "(with --capture: an empty folder the captured frames are saved to).")
    add_config(p, "Config file: the bundle and, with --capture, the asset's cameras.")
    p.add_argument("--asset", help="Asset id in --config whose cameras --capture uses.")
    p.add_argument("--camera", help="Only this camera of the asset (default: all of them).")
    p.add_argument("--capture", type=int, metavar="N",
                   help="First capture N fit frames per camera from the configured camera(s) into --normal.")
    p.add_argument("--every", type=float, default=1.0, metavar="S", help="Seconds between captured frames.")
    p.add_argument("--label", action="append", default=[], metavar="NAME=DIR",
                   help="Labelled examples for few-shot scoring (repeatable); NAME:SEVERITY=DIR sets "
                   "ok|warning|fault (default: the bundle label's severity, else warning).")
    p.add_argument("--out", required=True, type=Path, help="Profile file to write.")
    p.add_argument("--force", action="store_true", help="Replace --out if it is a profile (other files never).")
    p.add_argument("--roi", metavar="REGION",
                   help="Judge only this part of each frame, as the camera's 'roi' does: 'left,top,right,bottom' "
                        "or polygon corners 'x,y x,y x,y ...', in fractions of the frame.")
    p.add_argument(
        "--anomaly-prior",
        type=float,
        default=0.5,
        metavar="P",
        help="Share of frames expected to be anomalous, in (0, 1): the prior behind p_anomaly. "
        "Lower it for a machine that is rarely abnormal (fewer false alarms, later detection).",
    )
    handles(p, "edge.cli.vision:enroll")


def image_files(folder: Path) -> list[Path]:
    """The images in a folder, in name order (so enrollment is reproducible)."""
    if not folder.is_dir():
        raise InputError(f"image folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"image folder {folder} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def parse_label(argument: str, known: Mapping[str, str]) -> tuple[str, str, Path]:
    """'crack=DIR' or 'crack:fault=DIR' -> (name, severity, folder); severity defaults to the bundle's."""
    match = _LABEL_ARG.match(argument)
    if not match:
        raise UsageError(f"--label {argument!r}: expected NAME=DIR or NAME:SEVERITY=DIR (severity ok|warning|fault)")
    name = match["name"].strip()
    severity = match["severity"] or known.get(name, "warning")
    return name, severity, Path(match["folder"])


def enroll(args: argparse.Namespace) -> int:
    from edge.bundle.load import load_bundle
    from edge.frames.roi import parse_roi
    from edge.vision.encoder import ImageEncoder
    from edge.vision.enrollment import LabelledExamples, build_profile
    from edge.vision.pipeline import embed_many
    from edge.vision.profile import bundle_fingerprint, check_replaceable, save_profile

    if not 0.0 < args.anomaly_prior < 1.0:
        raise UsageError(f"--anomaly-prior must be between 0 and 1 (exclusive), got {args.anomaly_prior}")
    check_replaceable(args.out, args.force)  # before the work, so a refused --out costs nothing
    bundle = load_bundle(_enrol_bundle(args))
    if args.capture is not None:
        _capture_normal(args)
    known = {label.name: label.severity for label in bundle.manifest.labels.entries} if bundle.manifest.labels else {}
    labels = [parse_label(argument, known) for argument in args.label]
    roi = parse_roi(args.roi) if args.roi else None
    normal_files = image_files(args.normal)
    encoder = ImageEncoder.load(bundle)
    log.info("embedding %d normal frames from %s", len(normal_files), args.normal)
    normal_embeddings, normal_patches = embed_many(encoder, normal_files, roi=roi)
    labelled = []
    for name, severity, folder in labels:
        embeddings, patches = embed_many(encoder, image_files(folder), roi=roi)
        labelled.append(LabelledExamples(name=name, severity=severity, embeddings=embeddings, patches=patches))
    profile = build_profile(bundle_fingerprint(bundle), normal_embeddings, normal_patches, labelled,
                            prior=args.anomaly_prior, top_share=bundle.manifest.image_model.patch_top_share)
    check_replaceable(args.out, args.force)  # again: the file may have appeared while enrolling
    save_profile(profile, args.out)
    info = profile.info
    heads = ", ".join(sorted(profile.calibration))
    print(f"{args.out}: {info['normal_frames']} normal frames ({info['memory_frames']} in memory, "
          f"{info['calibration_frames']} held out for calibration), heads: {heads}")
    for name, count in info["labelled"].items():
        print(f"  few-shot '{name}': {count} examples")
    print(f"  p_anomaly: {info['p_anomaly']}")
    return 0


def _enrol_bundle(args: argparse.Namespace) -> Path:
    from edge.settings import load_config

    if args.bundle is not None:
        return Path(args.bundle)
    config = load_config(args.config) if args.config is not None else None
    if config is None or config.model is None:
        raise UsageError("enroll needs --bundle, or --config with a 'model' section")
    return config.model.bundle


def _capture_normal(args: argparse.Namespace) -> None:
    """``--capture N``: the normal frames come from the asset's cameras, into an empty --normal folder."""
    from edge.cli.capture import capture_frames

    if args.config is None:
        raise UsageError("--capture needs --config (the file that defines the asset's cameras)")
    if args.normal.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in args.normal.iterdir()):
        raise UsageError(f"--normal {args.normal} already holds images: capture into an empty folder, or enrol "
                         "from it without --capture")
    capture_frames(args.config, args.asset, args.camera, args.capture, args.every, args.normal)
