"""``edgewatch vibration analyze``: one recording -> severity, ISO zone and bearing diagnosis."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from edge.cli.options import handles
from edge.errors import InputError, UsageError

if TYPE_CHECKING:  # numpy and scipy's signal stack load only when a recording is analysed
    import numpy as np

    from edge.analytics import bearings, family_normal, iso
    from edge.analytics.scalar_rules import ScalarRules, ScalarState

log = logging.getLogger(__name__)

MIN_REFERENCE_BURSTS = 3  # 1 s bursts of the healthy recording the normal is learned from


def add_parser(sub: argparse._SubParsersAction, parser_class: type[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("vibration", help="Vibration analytics on recordings.")
    vsub = p.add_subparsers(dest="vibration_command", metavar="COMMAND", required=True, parser_class=parser_class)
    a = vsub.add_parser(
        "analyze",
        help="Analyse one accelerometer recording (npy, csv, wav).",
        description="Velocity RMS and ISO zone, envelope analysis and bearing defect frequencies.",
    )
    a.add_argument("file", type=Path, help="Recording in g (npy, csv or wav).")
    a.add_argument("--fs", type=float, help="Sample rate in Hz (required unless the file carries it).")
    a.add_argument("--rpm", type=float, required=True, help="Nominal shaft speed in rpm.")
    a.add_argument("--rpm-range", type=float, default=0.08, metavar="FRACTION",
                   help="Find the true speed from the signal within this fraction of --rpm (0: --rpm is exact).")
    a.add_argument("--measured-rpm", type=float, metavar="RPM", help="Shaft speed from a tachometer or VFD.")
    group = a.add_mutually_exclusive_group()
    group.add_argument("--bearing", help="Bearing from the built-in catalogue, e.g. 6205.")
    group.add_argument("--multiples", help="Defect frequencies as multiples of shaft speed: BPFO,BPFI,BSF,FTF.")
    a.add_argument("--machine-group", choices=["1", "2"], default="2", help="ISO 10816-3 machine group.")
    a.add_argument("--foundation", choices=["rigid", "flexible"], default="rigid")
    a.add_argument("--reference", type=Path, metavar="HEALTHY",
                   help="A recording of the same machine in good order (same sensor and speed, at least 3 s): "
                        "velocity and bearing-band acceleration are judged against it, as the service judges "
                        "against its learned normal.")
    a.add_argument("--reference-fs", type=float, metavar="HZ",
                   help="Sample rate of --reference when it differs from --fs (it is resampled down).")
    a.add_argument("--json", action="store_true", help="Print one JSON object on stdout.")
    handles(a, "edge.cli.vibration:analyze")


def load_recording(path: Path, fs_hz: float | None) -> tuple[np.ndarray, float]:
    """Samples in g and the sample rate; a WAV file carries its rate, npy/csv need --fs."""
    import numpy as np

    from edge.sensors.replay import load_values

    if not path.is_file():
        raise InputError(f"recording {path} does not exist")
    if path.suffix.lower() == ".wav":
        from scipy.io import wavfile

        try:
            rate, data = wavfile.read(path)
        except (ValueError, OSError) as exc:
            raise InputError(f"{path}: not a readable WAV file: {exc}") from exc
        data = np.asarray(data)
        if data.ndim > 1:
            data = data[:, 0]
        if np.issubdtype(data.dtype, np.integer):
            log.warning("%s holds integer PCM: full scale is read as 1 g; store float WAV in g instead", path)
            data = data.astype(np.float64) / float(np.iinfo(data.dtype).max)
        return data.astype(np.float64), float(fs_hz or rate)
    if fs_hz is None:
        raise UsageError(f"{path.name} does not carry its sample rate: give --fs HZ")
    return load_values(path, None), fs_hz


def analyze(args: argparse.Namespace) -> int:
    from edge.analytics import bearings, diagnosis, family_normal, iso, levels
    from edge.evidence import dumps

    samples, fs_hz = load_recording(args.file, args.fs)
    if args.rpm <= 0:
        raise UsageError(f"--rpm must be positive, got {args.rpm:g}")
    if not 0 <= args.rpm_range <= 0.3:
        raise UsageError(f"--rpm-range is a fraction of --rpm between 0 and 0.3, got {args.rpm_range:g}")
    try:
        if args.multiples:
            orders: bearings.DefectOrders | None = bearings.DefectOrders.parse(args.multiples)
        else:
            orders = bearings.bearing(args.bearing) if args.bearing else None
        limits = iso.ZoneLimits.for_machine(int(args.machine_group), args.foundation)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    try:
        result = diagnosis.diagnose(samples, fs_hz, args.rpm / 60.0, orders, limits, args.rpm_range,
                                    args.measured_rpm / 60.0 if args.measured_rpm else None)
    except ValueError as exc:
        raise InputError(f"{args.file}: {exc}") from exc
    if args.reference is not None:
        states, rules, family = learn_reference(args.reference, args.reference_fs or args.fs, fs_hz,
                                                args.rpm / 60.0, orders, limits)
        result = levels.against_normal(family_normal.against_normal(result, family), states, rules, 0.0)
    if args.json:
        print(dumps(result.to_dict()).decode())
        return 0
    print(f"{args.file}: {result.condition.value.upper()}"
          f"{f' ({result.fault_type})' if result.fault_type else ''}, confidence {result.confidence:.2f}")
    print(f"  velocity RMS {result.severity.velocity_rms_mm_s:.2f} mm/s, zone {result.zone}, "
          f"peak {result.severity.acceleration_peak_g:.2f} g, crest factor {result.severity.crest_factor:.1f}, "
          f"kurtosis {result.severity.kurtosis:.1f}")
    for reason in result.reasons:
        print(f"  - {reason}")
    return 0


def learn_reference(
    path: Path,
    reference_fs_hz: float | None,
    fs_hz: float,
    shaft_hz: float,
    orders: bearings.DefectOrders | None,
    limits: iso.ZoneLimits,
) -> tuple[dict[str, ScalarState], dict[str, ScalarRules], family_normal.FamilyNormal]:
    """The levels' normal learned from 1 s bursts of a healthy recording of the same machine,
    brought to the analysed recording's sample rate so both bearing bands span the same Hz, and
    the defect lines' normal from the whole recording (its envelope spectrum as finely resolved
    as the analysed one's)."""
    from edge.analytics import diagnosis, family_normal, levels, vibration
    from edge.analytics.scalar_rules import ScalarState
    from edge.evidence import Condition

    reference, reference_fs_hz = load_recording(path, reference_fs_hz)
    if reference_fs_hz < fs_hz:
        raise UsageError(f"reference {path.name} is sampled at {reference_fs_hz:g} Hz, below the recording's "
                         f"{fs_hz:g} Hz: its bearing band would be narrower; record it at the same rate")
    try:
        reference = vibration.resample(reference, reference_fs_hz, fs_hz)
        healthy = diagnosis.diagnose(reference, fs_hz, shaft_hz, orders, limits)
    except ValueError as exc:
        raise InputError(f"reference {path}: {exc}") from exc
    if healthy.condition is not Condition.OK:  # its levels are still what this machine's normal looks like
        log.warning("reference %s reads %s by itself (%s): its levels are taken as normal anyway",
                    path, healthy.condition.value, healthy.reasons[-1])
    burst = round(fs_hz)
    bursts = [reference[start : start + burst] for start in range(0, reference.size - burst + 1, burst)]
    if len(bursts) < MIN_REFERENCE_BURSTS:
        raise InputError(f"reference {path} holds {reference.size / fs_hz:.1f} s; give at least "
                         f"{MIN_REFERENCE_BURSTS} s of the healthy machine")
    rules = {level.name: levels.level_rules(level.unit, warmup=len(bursts)) for level in levels.LEVELS}
    states = {name: ScalarState.for_rules(rule) for name, rule in rules.items()}
    for samples in bursts:  # each is normal, whatever its own verdict: no judging, unlike the service
        levels.learn(states, diagnosis.diagnose(samples, fs_hz, None, None, limits).severity)
    family = family_normal.FamilyNormal()
    family.learn(healthy)
    return states, rules, family
