"""``edgewatch demo``: run the built-in demo and print its verdict table and summary."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge.cli.options import handles
from edge.errors import UsageError


def add_parser(sub: argparse._SubParsersAction, parser_class: type[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="Run edgewatch end to end on the built-in demo data.",
        description="Export EfficientNet-Lite0 to INT8, enroll normal solar cells, replay cells and "
        "bearing vibration through fusion and escalation to an oracle cloud, and print a verdict table, a "
        "summary and the evaluation's headline.",
    )
    p.add_argument("--out", type=Path, default=Path("demo-out"), help="Working folder for the demo's files.")
    p.add_argument(
        "--frames",
        type=int,
        default=60,
        help="Checks in total, spread evenly over the six demo machines (>= 6, whole rounds).",
    )
    p.add_argument("--cwru", type=Path, help="Folder of CWRU records with a records.json, e.g. the full set "
                   "(default: the trimmed real records shipped in edge/cwru).")
    p.add_argument("--cloud-error-rate", type=float, default=0.0,
                   help="Share of frames the demo's oracle cloud answers wrongly on purpose (0..1).")
    p.add_argument("--seed", type=int, default=0,
                   help="Which cells each machine shows (and which the oracle answers wrongly): another seed, "
                   "another stream.")
    p.add_argument("--json", action="store_true", help="Print the summary as one JSON object.")
    handles(p, "edge.cli.demo:demo")


def demo(args: argparse.Namespace) -> int:
    from edge import cwru
    from edge.demo.data import MACHINES
    from edge.demo.run import DemoOptions, run_demo
    from edge.demo.text import format_evaluation, format_summary, format_table

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
