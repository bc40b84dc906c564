"""Write the CWRU subset shipped in ``edge/cwru/`` from the full records, and measure what it loses.

Each race-fault record keeps its first ``--seconds``; the normal record (5 s at 48 kHz) and the ball
faults are kept whole: ball-fault evidence is weak and builds over the whole 10 s (in their first 6 s
B021 reads ok instead of a rolling-element warning, B028 a warning instead of a fault). Samples are
int16 with one scale per record (full scale = the record's largest magnitude). Printed per record: the
quantisation noise against the signal in dB, and the diagnosis of the stored subset against the
full-precision samples of the same span at the true rpm and 5 % off both ways (verdict, fault type,
confidence, defect frequency); last, the folder's size. The subset must diagnose as the source does.

    python benchmarks/cwru_subset.py --cwru ../shared/data/cwru [--seconds 6] [--out edge/cwru]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edge import cwru
from edge.analytics import bearings, diagnosis, iso

KEPT = ("file", "cwru_record", "fault", "fault_diameter_in", "load_hp", "or_position", "sample_rate_hz", "rpm",
        "channel")
OFFSETS = (0.0, -0.05, 0.05)
WHOLE = ("normal", "ball")  # kept whole: see above


def write_subset(source: Path, out: Path, seconds: float) -> list[dict]:
    """The trimmed int16 records and their records.json in ``out``."""
    listed = json.loads((source / "records.json").read_text(encoding="utf-8"))
    manifest = []
    for entry in listed:
        samples = np.load(source / entry["file"]).astype(np.float64)
        keep = samples.size if entry["fault"] in WHOLE else round(seconds * entry["sample_rate_hz"])
        kept = samples[:keep]
        scale_g = float(np.abs(kept).max()) / 32767.0
        name = Path(entry["file"]).stem
        np.savez_compressed(out / f"{name}.npz", samples=np.round(kept / scale_g).astype(np.int16),
                            scale_g=np.float64(scale_g))
        manifest.append({**{key: entry[key] for key in KEPT}, "file": f"{name}.npz",
                         "seconds": round(kept.size / entry["sample_rate_hz"], 2),
                         "source_seconds": round(samples.size / entry["sample_rate_hz"], 2), "start_s": 0.0})
    (out / "records.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


def _diagnose(samples: np.ndarray, record: cwru.Record, offset: float) -> tuple[str, str, float, float]:
    result = diagnosis.diagnose(samples, record.sample_rate_hz, record.rpm * (1 + offset) / 60.0,
                                bearings.bearing("6205"), iso.ZoneLimits.for_machine(2, "rigid"))
    return (result.condition.value, result.fault_type or "-", result.confidence,
            float(result.values.get("defect_freq_hz", 0.0)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cwru", type=Path, required=True, help="Folder of the full records (.npy, records.json).")
    parser.add_argument("--seconds", type=float, default=6.0, help="Seconds kept of each race-fault record.")
    parser.add_argument("--out", type=Path, default=cwru.BUNDLED)
    args = parser.parse_args()
    write_subset(args.cwru, args.out, args.seconds)
    full, stored = cwru.records(args.cwru), cwru.records(args.out)
    print("| record | noise dB | " + " | ".join(f"rpm {o:+.0%}: subset (full-precision)" for o in OFFSETS) + " |")
    print("|---|---|" + "---|" * len(OFFSETS))
    differ = 0
    for name, record in stored.items():
        subset = record.samples()
        source = full[name].samples()[: subset.size]
        noise_db = 20 * np.log10(np.std(subset - source) / np.std(source))
        cells = []
        for offset in OFFSETS:
            mine, theirs = _diagnose(subset, record, offset), _diagnose(source, record, offset)
            differ += mine[:2] != theirs[:2]
            cells.append(f"{mine[0]} {mine[1]} {mine[2]:.2f} {mine[3]:.1f} Hz ({theirs[2]:.2f} {theirs[3]:.1f} Hz)")
        print(f"| {name} | {noise_db:.0f} | " + " | ".join(cells) + " |")
    size_mb = sum(path.stat().st_size for path in args.out.iterdir() if path.suffix in (".npz", ".json")) / 1e6
    print(f"\nverdicts that differ from the full-precision span: {differ} of {len(stored) * len(OFFSETS)}; "
          f"{size_mb:.2f} MB in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
