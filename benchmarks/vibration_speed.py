"""The CWRU table at the true shaft speed and with the configured rpm 5 % off, both ways.

Real machines run off their nameplate speed; the diagnosis estimates the true speed from the
signal within +-8 % of the configured one. Every record is analysed whole (as
``edgewatch vibration analyze`` does) at true rpm, +5 % and -5 %, and the verdict, the fault
type and the speed used are printed, with the count of race faults named alike in all three.
The records are those shipped in edge/cwru unless ``--cwru`` names a folder of the full set.

    python benchmarks/vibration_speed.py [--cwru DIR] [--offsets -0.05,0,0.05]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from edge import cwru
from edge.analytics import bearings, diagnosis, iso


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cwru", type=Path, default=cwru.BUNDLED, help="Folder of CWRU records with a records.json.")
    parser.add_argument("--offsets", default="0,0.05,-0.05", help="Relative rpm errors to try, comma-separated.")
    args = parser.parse_args()
    offsets = [float(v) for v in args.offsets.split(",")]
    records = cwru.records(args.cwru)
    limits = iso.ZoneLimits.for_machine(2, "rigid")
    print("| record | label | " + " | ".join(f"rpm {o:+.0%}: verdict (rpm used)" for o in offsets) + " |")
    print("|---|---|" + "---|" * len(offsets))
    same = races = 0
    elapsed_s = 0.0
    for record in records.values():
        samples = record.samples()
        cells, answers = [], set()
        for offset in offsets:
            started = time.perf_counter()
            result = diagnosis.diagnose(samples, record.sample_rate_hz, record.rpm * (1 + offset) / 60.0,
                                        bearings.bearing("6205"), limits)
            elapsed_s += time.perf_counter() - started
            answers.add((result.condition.value, result.fault_type))
            cells.append(f"{result.condition.value} {result.fault_type or '—'} ({result.values['rpm']:.0f})")
        if record.fault in ("inner_race", "outer_race"):
            races += 1
            same += len(answers) == 1
        print(f"| {record.name} | {record.fault} {record.fault_diameter_in:g} | " + " | ".join(cells) + " |")
    print(f"\nrace-fault records with one answer at every offset: {same} of {races}; "
          f"{elapsed_s / (len(records) * len(offsets)):.2f} s per whole-record diagnosis")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
