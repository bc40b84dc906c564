"""``edgewatch demo``: run the built-in demo and print its verdict table and summary."""

from __future__ import annotations

import argparse
import json
import sys

from edge.demo.run import DemoOptions, default_cwru_dir, format_summary, format_table, run_demo
from edge.errors import UsageError


def demo(args: argparse.Namespace) -> int:
    if args.frames < 4:
        raise UsageError(f"--frames must be at least 4 (one check per demo machine), got {args.frames}")
    options = DemoOptions(
        out=args.out,
        frames=args.frames,
        cwru_dir=args.cwru if args.cwru is not None else default_cwru_dir(),
    )
    result = run_demo(options, progress=lambda line: print(line, file=sys.stderr, flush=True))
    summary = result.summary()
    if args.json:
        print(json.dumps(summary))
    else:
        print(format_table(result.rows))
        print()
        print(format_summary(summary))
    return 0
