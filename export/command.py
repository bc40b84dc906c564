"""The ``edgewatch export`` subcommand: arguments -> ExportRequest -> summary table on stdout."""

from __future__ import annotations

import argparse

from export.validate import Gate


def export_command(args: argparse.Namespace) -> int:
    from export.pipeline import ExportRequest, run

    request = ExportRequest(
        model=args.model,
        out=args.out,
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
