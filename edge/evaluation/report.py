"""The evaluation as text and as JSON: the headline the demo prints, and the full report of ``edgewatch eval``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from edge.evaluation.figures import TARGET_ESCALATION_RATE, TARGET_SHARE_OF_CLOUD, Report


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def to_json(report: Report) -> dict[str, Any]:
    document = asdict(report)
    document["escalation_rate"] = report.escalation_rate
    document["target_met"] = report.target_met
    return document


def headline(report: Report) -> str:
    """Two lines: the three accuracies side by side, then what the escalations did and cost."""
    costs = report.cost_per_1000_usd
    priced = ", ".join(f"${costs[m]['policy']:.2f} at {m}" for m in costs)
    share = report.policy_accuracy / report.cloud_accuracy if report.cloud_accuracy else 0.0
    return "\n".join([
        f"local only {_pct(report.local_accuracy)}, always cloud {_pct(report.cloud_accuracy)}, "
        f"policy {_pct(report.policy_accuracy)} ({_pct(share)} of always cloud) escalating "
        f"{_pct(report.escalation_rate)} of {report.checks} checks",
        f"{report.escalations} escalation(s): {report.fixed} fixed a wrong verdict, {report.wasted} were not needed, "
        f"{report.unfixed} left it wrong, {report.broken} made it wrong; {report.missed} wrong verdict(s) not "
        f"escalated; per 1,000 checks: {priced or 'nothing priced'}",
    ])


def closing_note(report: Report) -> str:
    """Whether the target is met and, when it is not, what would get there."""
    target = (f"target: policy >= {_pct(TARGET_SHARE_OF_CLOUD)} of always-cloud accuracy while escalating "
              f"<= {_pct(TARGET_ESCALATION_RATE)} of checks")
    if report.target_met:
        return f"{target}: met"
    why = ""
    if report.missed_confidence is not None:
        low, high = report.missed_confidence
        span = f"{low:.2f}" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}-{high:.2f}"
        why = (f"; the {report.missed} wrong verdict(s) not escalated were {span} confident, "
               f"more so than {_pct(report.right_less_confident)} of the right ones")
        if report.missed_held_back:
            why += (f", and the policy wanted to ask about {report.missed_held_back} of them but a cool-down, "
                    "a duplicate frame or the budget held it back")
    return _what_would_get_there(report, target) + why


def _what_would_get_there(report: Report, target: str) -> str:
    needed = report.needed
    if needed is None:
        return (f"{target}: not met, and escalating by local confidence alone never gets there on this stream "
                "(the cloud's own answers fall short)")
    share = _pct(1.0 - needed.coverage)
    if 1.0 - needed.coverage <= TARGET_ESCALATION_RATE:
        return (f"{target}: not met by the policy; escalating the least confident {share} of checks (local "
                f"confidence under about {needed.confidence_at_least:.2f}) would meet it: that is "
                "policy.confidence_below, if it holds on other machines too")
    return (f"{target}: not met; by local confidence alone it takes escalating {share} of checks: the board's "
            "confidence does not single out its wrong verdicts well enough (better local evidence, or a trigger "
            "that catches them, would)")


def full(report: Report) -> str:
    """The whole report: headline, costs, the risk-coverage curve, per case, and the closing note."""
    lines = [headline(report), "", f"{'cost per 1,000 checks':<24} {'policy':>9} {'always cloud':>13}"]
    for model, cost in report.cost_per_1000_usd.items():
        lines.append(f"  {model:<22} {cost['policy']:>8.3f}$ {cost['always_cloud']:>12.3f}$")
    lines += ["", "risk-coverage of the local confidence (keep the most confident checks local, ask about the rest)",
              f"  {'kept local':>10} {'local error':>11} {'confidence >=':>13} {'accuracy':>9}"]
    for point in report.curve:
        lines.append(f"  {_pct(point.coverage):>10} {_pct(point.local_risk):>11} "
                     f"{point.confidence_at_least:>13.2f} {_pct(point.accuracy):>9}")
    lines += ["", f"  {'case':<34} {'checks':>6} {'local':>6} {'policy':>7} {'escalated':>9} {'missed':>6}"]
    for case, figures in report.per_case.items():
        lines.append(f"  {case[:34]:<34} {figures['checks']:>6.0f} {_pct(figures['local']):>6} "
                     f"{_pct(figures['policy']):>7} {_pct(figures['escalation_rate']):>9} {figures['missed']:>6.0f}")
    lines += ["", closing_note(report)]
    return "\n".join(lines)
