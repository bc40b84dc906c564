"""Arguments of ``edgewatch export`` (argparse only: the export, in the workstation package ``export/``,
is imported when it runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.cli.options import handles


def _triple(text: str) -> tuple[float, float, float]:
    """'0.5,0.5,0.5' -> (0.5, 0.5, 0.5): one value per RGB channel."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"{text!r} is not three numbers R,G,B")
    return values


def add_parser(sub: argparse._SubParsersAction, parser_class: type[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "export",
        help="Export a checkpoint to an INT8 model bundle (workstation; needs the 'export' extra).",
        description="Convert a CLIP/SigLIP/DINOv2 checkpoint (hub id or local folder), the built-in "
        "'efficientnet-lite0' (or -lite1, -lite2) or your own ONNX backbone (--onnx, cut at --features) to ONNX, "
        "quantize it to INT8, check INT8 against FP32 and write a bundle.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="Hub id (openai/clip-vit-base-patch32, facebook/dinov2-small), local folder, "
                        "or 'efficientnet-lite0', -lite1, -lite2.")
    source.add_argument("--onnx", type=Path, metavar="MODEL.onnx",
                        help="Your own ONNX backbone (anomalib, timm, in-house), cut at --features.")
    p.add_argument("--features", metavar="TENSOR[,TENSOR...]",
                   help="With --onnx: tensors to take patch features from, ViT tokens (B, 1+N, C) or CNN maps "
                        "(B, C, H, W), fine to coarse.")
    p.add_argument("--mean", type=_triple, metavar="R,G,B", help="With --onnx: input normalisation mean "
                   "(default ImageNet's).")
    p.add_argument("--std", type=_triple, metavar="R,G,B", help="With --onnx: input normalisation std "
                   "(default ImageNet's).")
    p.add_argument("--out", required=True, type=Path, help="Bundle folder to write (atomically).")
    p.add_argument("--labels", type=Path, help="Labels YAML (conditions, prompts, severities); default: built-in set.")
    p.add_argument("--calibration", type=Path, help="Folder of your own images for static INT8 calibration.")
    p.add_argument("--input-size", type=int, metavar="PX", help="Square input for efficientnet-lite0/1/2 (multiple "
                   "of 32, 96-1024; default the variant's own: 224, 240, 260): keeps hairline cracks, costs more per "
                   "frame. CLIP/SigLIP keep theirs; "
                   "an --onnx model with a dynamic input size needs it.")
    p.add_argument(
        "--quantize", choices=["static", "dynamic", "none"], help="Default: static with --calibration, else dynamic."
    )
    p.add_argument("--calibration-method", choices=["minmax", "entropy", "percentile"], default="minmax")
    p.add_argument("--min-cosine", type=float, default=0.98,
                   help="Accuracy gate (image-text models): mean FP32/INT8 embedding cosine.")
    p.add_argument("--min-top1", type=float, default=0.97,
                   help="Accuracy gate (image-text models): FP32/INT8 top-1 label agreement.")
    p.add_argument("--min-rank-correlation", type=float, default=0.95,
                   help="Accuracy gate (image-only models): FP32/INT8 anomaly-score rank correlation per head; "
                        "its bootstrap interval's lower end must reach this less 0.05.")
    p.add_argument("--validation", type=Path,
                   help="Labelled folder with good/ and defect/ images: the gate then requires the INT8 AUROC "
                        "within --max-auroc-drop of FP32's (at its interval's end).")
    p.add_argument("--max-auroc-drop", type=float, default=0.01,
                   help="Accuracy gate with --validation: largest allowed FP32 minus INT8 AUROC (interval's end).")
    p.add_argument(
        "--with-text-model", action="store_true", help="Keep the INT8 text encoder so labels can be added on the board."
    )
    p.add_argument("--force", action="store_true", help="Replace an existing output folder.")
    handles(p, "export.command:export_command")
