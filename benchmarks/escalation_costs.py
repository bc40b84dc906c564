"""What one escalation costs, per model and image detail, and what the request path costs locally.

Prints the estimate ``edge.escalation.request.build_request`` makes for a typical escalation (two
pieces of evidence, a 12 MP frame) with no image, one low-detail and one high-detail image, for
every model in the default pricing table — the figures in docs/escalation.md. Then times, against
the local OpenAI-compatible server on 127.0.0.1, a text-only round trip through the official SDK,
the image preparation (12 MP -> JPEG data URL) and fusion, as ratios to the round trip measured in
the same run.

    python benchmarks/escalation_costs.py [--rounds 50] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from edge.escalation.client import CloudClient
from edge.escalation.config import EscalationConfig
from edge.escalation.images import prepare
from edge.escalation.local_server import LocalCloudServer
from edge.escalation.request import build_request
from edge.evidence import Condition, Evidence, EvidenceKind
from edge.fusion.config import FusionConfig
from edge.fusion.fuse import fuse

EVIDENCE = [
    Evidence("vision:top", EvidenceKind.VISION, Condition.OK, 0.6, reasons=("vision: 'normal' p=0.60",)),
    Evidence("vibration:drive_end", EvidenceKind.VIBRATION, Condition.WARNING, 0.55, reasons=("zone C, 5.2 mm/s",),
             values={"velocity_rms_mm_s": 5.2, "zone": "C"}, fault_type="outer_race"),
]


def _frame() -> Image.Image:
    pixels = np.random.default_rng(0).integers(0, 255, (3000, 4000, 3), dtype=np.uint8)  # (H, W, 3) 12 MP
    return Image.fromarray(pixels)


def estimates() -> list[dict[str, Any]]:
    verdict = fuse("pump", EVIDENCE, FusionConfig(), 0.0).verdict
    frame = _frame()
    rows = []
    for model in EscalationConfig().pricing:
        for detail in ("low", "high"):
            config = EscalationConfig(model=model, detail=detail)
            for images in ([], [prepare(frame, detail)]):
                request = build_request("pump", "Feed pump", verdict, ["low confidence"], images, config)
                rows.append({"model": model, "detail": detail, "images": len(images), **request.estimate.to_dict()})
    return [row for row in rows if row["images"] or row["detail"] == "low"]


def _median_ms(action: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def timings(rounds: int) -> dict[str, float]:
    verdict = fuse("pump", EVIDENCE, FusionConfig(), 0.0).verdict
    frame = _frame()
    with LocalCloudServer() as cloud:
        config = EscalationConfig(enabled=True, base_url=cloud.url, max_retries=0)
        client = CloudClient(config, api_key="benchmark")
        request = build_request("pump", "Feed pump", verdict, ["low confidence"], [], config)
        keys = iter(range(10**9))
        round_trip = _median_ms(lambda: client.ask(request, f"k{next(keys)}"), rounds)
        client.close()
    prepare_low = _median_ms(lambda: prepare(frame, "low"), max(3, rounds // 10))
    fusion = _median_ms(lambda: fuse("pump", EVIDENCE, FusionConfig(), 0.0), rounds)
    return {"sdk_round_trip_ms": round_trip, "prepare_12mp_low_ms": prepare_low, "fusion_ms": fusion,
            "prepare_vs_round_trip": prepare_low / round_trip, "fusion_vs_round_trip": fusion / round_trip}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = {"estimates": estimates(), "timings": timings(args.rounds)}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{'model':<12}{'detail':<8}{'images':>7}{'input tok':>11}{'output tok':>11}{'USD':>10}")
    for row in report["estimates"]:
        print(f"{row['model']:<12}{row['detail']:<8}{row['images']:>7}{row['input_tokens']:>11}"
              f"{row['output_tokens']:>11}{row['usd']:>10.5f}")
    for name, value in report["timings"].items():
        print(f"{name:<24}{value:.4g}")


if __name__ == "__main__":
    main()
