"""``edgewatch eval``: score a run's stored verdicts against labels, with an oracle cloud as the reference."""

from __future__ import annotations

import argparse
import json
import sys

from edge.errors import UsageError
from edge.evaluation import figures, replay, report, whatif
from edge.evaluation.labels import load_labels
from edge.settings import load_config


def evaluate(args: argparse.Namespace) -> int:
    if not 0.0 <= args.cloud_error_rate <= 1.0:
        raise UsageError(f"--cloud-error-rate must be between 0 and 1, got {args.cloud_error_rate}")
    config = load_config(args.config)
    policy = whatif.policy_with(config.escalation.policy, args.policy) if args.policy else None
    labels = load_labels(args.labels)
    outcomes = replay.collect(config, labels, error_rate=args.cloud_error_rate, seed=args.seed, policy=policy,
                              progress=lambda line: print(line, file=sys.stderr, flush=True))
    result = figures.evaluate(outcomes)
    if args.json:
        print(json.dumps({**report.to_json(result), "policy_changes": args.policy}))
        return 0
    if args.policy:
        print(f"policy decided again with {', '.join(args.policy)} (budget caps not replayed)")
    print(report.full(result))
    return 0
