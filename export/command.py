"""The ``edgewatch export`` subcommand: arguments -> ExportRequest -> summary table on stdout."""

from __future__ import annotations

import argparse

from edge.errors import UsageError
from export.validate import Gate


def export_command(args: argparse.Namespace) -> int:
    from export.own_onnx import parse_features
    from export.pipeline import ExportRequest, run

    if args.features is not None and args.onnx is None:
        raise UsageError("--features goes with --onnx MODEL.onnx (a --model's features are chosen for it)")
    request = ExportRequest(
        model=args.model,
        out=args.out,
        onnx=args.onnx,
        features=tuple(parse_features(args.features)) if args.features is not None else (),
        mean=args.mean,
        std=args.std,
        labels=args.labels,
        calibration=args.calibration,
        validation=args.validation,
        quantize=args.quantize,
        calibration_method=args.calibration_method,
        gate=Gate(min_cosine=args.min_cosine, min_top1=args.min_top1,
                  min_rank_correlation=args.min_rank_correlation, max_auroc_drop=args.max_auroc_drop),
        with_text_model=args.with_text_model,
        input_size_px=args.input_size,
        force=args.force,
    )
    summary = run(request)
    print(summary.table())
    return 0
