"""The demo's output as text: the verdict table, the summary, and the evaluation's headline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edge.demo.run import CheckRow
from edge.evaluation import report
from edge.evaluation.figures import Report


def format_table(rows: Sequence[CheckRow]) -> str:
    """The verdict table: one line per check, the dataset's answer beside edgewatch's."""
    columns = (f"{'asset':<11} {'cell (defect p)':<20} {'expected':<8} {'vision':<22} {'vibration':<20} "
               f"{'verdict':<8} {'conf':>4}  {'cloud':<8} right")
    lines = [columns, "-" * len(columns)]
    for row in rows:
        cell = f"{row.item.cell} ({row.item.defect_probability:.2f})"
        lines.append(
            f"{row.machine.asset_id:<11} {cell:<20} {row.expected:<8} {row.vision[:22]:<22} "
            f"{row.vibration[:20]:<20} {row.verdict:<8} {row.confidence:>4.2f}  {row.cloud[:8]:<8} "
            f"{'yes' if row.correct else 'NO'}"
        )
    return "\n".join(lines)


def format_summary(summary: dict[str, Any]) -> str:
    def percent(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.0f}%"

    latency = summary["latency_ms_p50"]
    return "\n".join([
        f"checks             {summary['checks']}",
        f"accuracy           {percent(summary['accuracy'])} against the dataset labels "
        f"(healthy: {summary['normal_correct']}/{summary['normal_total']} ok; "
        f"faulty: {summary['faults_flagged']}/{summary['faults_total']} flagged)",
        f"  evidence alone   vision {percent(summary['vision_accuracy'])} (against the cells' labels), "
        f"vibration {percent(summary['vibration_accuracy'])} (against the bearings'); "
        f"fused {percent(summary['accuracy'])} (against both)",
        *(f"  {case[:36]:<36} fused {percent(figures['accuracy']):>4}  vision {percent(figures['vision_accuracy']):>4}"
          f"  vibration {percent(figures['vibration_accuracy']):>4}  ({figures['checks']} checks)"
          for case, figures in summary["per_case"].items()),
        _camera_missed(summary["camera_missed"]),
        "verdicts           one per check (the demo config raises a fault at once: every frame is another cell)",
        f"escalation rate    {percent(summary['escalation_rate'])} "
        f"({summary['escalations']} check(s) sent to the oracle cloud, "
        f"${summary['cloud_cost_usd']:.4f} at gpt-4o prices; repeats of a situation wait out the cool-down)",
        f"  asked because    {'; '.join(summary['escalated_because']) or '-'}",
        f"latency per check  {'n/a' if latency is None else f'{latency:.0f} ms'} p50, frame to verdict "
        "(vision scoring, fusion, and the vibration analysis when a new burst arrived)",
        f"bearing vibration  {summary['vibration_source']}",
        f"history            {summary['history']}  (edgewatch history --config {summary['config']})",
        f"status page        {summary['status_page']}  and metrics {summary['metrics']}  "
        f"(while `edgewatch run --config {summary['config']}` runs)",
        f"finished in        {summary['wall_s']} s",
    ])


def _camera_missed(missed: dict[str, Any]) -> str:
    """Why the camera called some defective cells ok, when it did: the demo says so rather than hide it."""
    if not missed["missed"]:
        return f"camera             caught all {missed['defective_seen']} defective cells it saw"
    low, high = missed["p_anomaly_range"]
    return (f"camera             missed {missed['missed']} of {missed['defective_seen']} defective cells it saw: "
            f"p_anomaly {low:.2f}-{high:.2f}, under 0.5 - they look like normal cells to the normal baseline "
            "(a crack thinner than a patch, a defect the enrolled cells also show); only the cloud or a "
            "better-separating model catches those")


def format_evaluation(evaluation: Report) -> str:
    """The headline of the evaluation and whether the escalation target is met."""
    lines = report.headline(evaluation).splitlines()
    return "\n".join([f"evaluation         {lines[0]}", *(f"                   {line}" for line in lines[1:]),
                      f"                   {report.closing_note(evaluation)}"])
