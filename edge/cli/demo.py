"""``edgewatch demo``: run the built-in demo and print its verdict table and summary."""

from __future__ import annotations

import argparse
import json
import sys

from edge import cwru
from edge.demo.data import MACHINES
from edge.demo.run import DemoOptions, run_demo
from edge.demo.text import format_evaluation, format_summary, format_table
from edge.errors import UsageError


def demo(args: argparse.Namespace) -> int:
    if args.frames < len(MACHINES):
        raise UsageError(f"--frames must be at least {len(MACHINES)} (one check per demo machine), got {args.frames}")
    if not 0.0 <= args.cloud_error_rate <= 1.0:
        raise UsageError(f"--cloud-error-rate must be between 0 and 1, got {args.cloud_error_rate}")
    options = DemoOptions(out=args.out, frames=args.frames, cwru_dir=args.cwru or cwru.BUNDLED,
                          cloud_error_rate=args.cloud_error_rate, seed=args.seed)
    result = run_demo(options, progress=lambda line: print(line, file=sys.stderr, flush=True))
    summary = result.summary()
    if args.json:
        print(json.dumps(summary))
    else:
        print(format_table(result.rows))
        print()
        print(format_summary(summary))
        if result.evaluation is not None:
            print(format_evaluation(result.evaluation))
    return 0
