"""``edgewatch eval``: score a run's stored verdicts against labels, with an oracle cloud as the reference."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge.cli.options import add_config, handles
from edge.errors import UsageError


def add_parser(sub: argparse._SubParsersAction, parser_class: type[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "eval",
        help="Score a run's verdicts against labels; compare local, always-cloud and the escalation policy.",
        description="Read the verdicts 'edgewatch run' stored for the labelled assets, ask an oracle cloud (a "
        "local OpenAI-compatible server answering from the labels) about every check at gpt-4o and gpt-4o-mini "
        "prices, and print accuracies, escalation rate, costs and the risk-coverage curve. See docs/evaluation.md.",
    )
    add_config(p, "The config the run used (its state_dir holds them).", required=True)
    p.add_argument("--labels", type=Path, required=True, help="Labels file (YAML or JSON), see docs/evaluation.md.")
    p.add_argument("--cloud-error-rate", type=float, default=0.0,
                   help="Share of frames the oracle answers wrongly on purpose (0..1).")
    p.add_argument("--seed", type=int, default=0, help="Which frames the oracle gets wrong.")
    p.add_argument("--policy", action="append", default=[], metavar="KEY=VALUE",
                   help="Decide the escalations again with this policy setting changed (repeatable), e.g. "
                   "confidence_below=0.7 or cooldown_s=0, instead of reading what the run's policy did.")
    p.add_argument("--json", action="store_true", help="Print the figures as one JSON object.")
    handles(p, "edge.cli.evaluate:evaluate")


def evaluate(args: argparse.Namespace) -> int:
    from edge.evaluation import figures, replay, report, whatif
    from edge.evaluation.labels import load_labels
    from edge.settings import load_config

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
