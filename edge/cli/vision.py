"""``edgewatch enroll``, and the vision part of ``edgewatch check``'s human output."""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Mapping
from pathlib import Path

from edge.bundle.load import load_bundle
from edge.errors import InputError, UsageError
from edge.frames.roi import parse_roi
from edge.settings import load_config
from edge.vision.encoder import ImageEncoder
from edge.vision.enrollment import LabelledExamples, build_profile
from edge.vision.evidence import Decision
from edge.vision.pipeline import VisionResult, embed_many
from edge.vision.profile import bundle_fingerprint, check_replaceable, save_profile

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
_LABEL_ARG = re.compile(r"^(?P<name>[^:=]+)(?::(?P<severity>ok|warning|fault))?=(?P<folder>.+)$")


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


def describe(result: VisionResult, decision: Decision) -> str:
    """Human output of ``check``: every head, then the calibrated decision."""
    lines = []
    if result.anomaly_score is not None:
        lines.append(f"anomaly score  {result.anomaly_score:.4f}")
    for head, value in result.heads.items():
        lines.append(f"  {head:<16}{value:.4f}")
    if result.p_anomaly is not None:
        lines.append(f"p_anomaly      {result.p_anomaly:.3f} (p-value {result.p_value:.3g})")
    for title, probabilities in (("zero-shot", result.labels), ("few-shot", result.few_shot)):
        if probabilities:
            lines.append(f"{title}:")
            for name, p in sorted(probabilities.items(), key=lambda item: -item[1]):
                lines.append(f"  {name:<24}{p:.3f}")
    condition = decision.condition.value if decision.condition else "no opinion"
    lines.append(f"vision verdict {condition} (confidence {decision.confidence:.2f})")
    lines += [f"  - {reason}" for reason in decision.reasons]
    timings = ", ".join(f"{name} {ms:.1f} ms" for name, ms in result.timings_ms.items())
    lines.append(f"timings        {timings}")
    return "\n".join(lines)

