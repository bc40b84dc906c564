"""Healthy and faulty machines on rigs never tuned for: how many are left alone, how many named.

Each rig is drawn at random (``bench.healthy_signals.draw_rig``): one of five bearings, a shaft
speed of 600-3600 rpm configured 5 % low, right or 5 % high, a sensor rate of 8-48 kHz, one to
three structural resonances, a housing resonance, noise from 0.005 to 0.05 g, a gear mesh or none,
mains at 50 or 60 Hz, and mechanical looseness (1x harmonics with half orders, a landing impact
per turn) on half of them. The same rigs run healthy, loose (looseness forced on), with an
outer-race defect and with an inner-race defect (impacts ``--severity`` x the RMS of everything
else in the band they ring), one 2 s burst each. The baseline in the same run is white noise of
each rig's level, which must read ``ok`` too. ``--normal`` also judges every burst against a
defect-line normal learned from two other healthy bursts of its rig (``family_normal``).

    python benchmarks/vibration_rigs.py [--rigs 60] [--seed 0] [--severity 6,12] [--normal]
"""

from __future__ import annotations

import argparse
import collections
import time

import numpy as np

from bench.healthy_signals import Rig, draw_rig, rig_burst
from edge.analytics import bearings, diagnosis, family_normal, iso

CASES = ("noise", "healthy", "loose", bearings.OUTER_RACE, bearings.INNER_RACE)
HEALTHY = ("noise", "healthy", "loose")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rigs", type=int, default=60, help="Rigs drawn (each runs every case).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the first rig.")
    parser.add_argument("--severity", default="6,12", help="Impact height range, in units of the noise level.")
    parser.add_argument("--seconds", type=float, default=2.0, help="Burst length.")
    parser.add_argument("--verbose", action="store_true", help="Print every burst that is not as expected.")
    parser.add_argument("--normal", action="store_true", help="Judge against each rig's learned defect-line normal.")
    args = parser.parse_args()
    low, high = (float(v) for v in args.severity.split(","))
    limits = iso.ZoneLimits.for_machine()
    counts: dict[str, collections.Counter[str]] = {case: collections.Counter() for case in CASES}
    started = time.perf_counter()
    for seed in range(args.seed, args.seed + args.rigs):
        tight, loose = draw_rig(seed), draw_rig(seed, looseness=True)
        normals = {rig: _normal(rig, args.seconds, seed, limits) for rig in (tight, loose)} if args.normal else {}
        severity = float(np.random.default_rng(seed).uniform(low, high))
        for case in CASES:
            rig = loose if case == "loose" else tight
            if case == "noise":
                burst = np.random.default_rng(seed).normal(0.0, rig.noise_g, int(rig.fs_hz * args.seconds))
            else:
                fault = None if case in HEALTHY else case
                burst = rig_burst(rig, args.seconds, fault=fault, severity=severity, seed=seed)
            result = diagnosis.diagnose(burst, rig.fs_hz, rig.nominal_shaft_hz, bearings.bearing(rig.bearing), limits)
            if args.normal:
                result = family_normal.against_normal(result, normals[rig])
            named = result.fault_type == case
            outcome = result.condition.value if case in HEALTHY else (
                f"{result.condition.value} named" if named else f"{result.condition.value} {result.fault_type or '-'}")
            counts[case][outcome] += 1
            expected = "ok" if case in HEALTHY else f"{result.condition.value} named"
            if args.verbose and outcome != expected:
                print(f"{case} seed {seed} {rig} severity {severity:.1f}: {outcome}\n    {result.reasons[-1]}")
    elapsed_s = time.perf_counter() - started
    print(f"| case ({args.rigs} rigs, {args.seconds:g} s bursts) | outcomes |")
    print("|---|---|")
    for case in CASES:
        print(f"| {case} | " + ", ".join(f"{k} {v}" for k, v in counts[case].most_common()) + " |")
    healthy = counts["healthy"] + counts["loose"]
    races = counts[bearings.OUTER_RACE] + counts[bearings.INNER_RACE]
    named = races["fault named"] + races["warning named"]
    print(f"\nhealthy and loose: {healthy['fault']} fault, {healthy['warning']} warning in {2 * args.rigs} "
          f"({10 * healthy['warning'] / (2 * args.rigs):.2f} warnings per 10); race faults named {named} of "
          f"{2 * args.rigs} ({named / (2 * args.rigs):.0%}; {races['fault named']} as fault); "
          f"{elapsed_s / (len(CASES) * args.rigs):.2f} s per burst")
    return 0


def _normal(rig: Rig, seconds: float, seed: int, limits: iso.ZoneLimits) -> family_normal.FamilyNormal:
    """The rig's defect lines as two healthy bursts (other seeds than the judged ones) show them."""
    normal = family_normal.FamilyNormal(warmup=2)
    for other in (seed + 100_000, seed + 200_000):
        burst = rig_burst(rig, seconds, seed=other)
        normal.learn(diagnosis.diagnose(burst, rig.fs_hz, rig.nominal_shaft_hz, bearings.bearing(rig.bearing), limits))
    return normal


if __name__ == "__main__":
    raise SystemExit(main())
