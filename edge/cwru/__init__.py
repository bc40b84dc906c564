"""Real bearing vibration: the CWRU drive-end records shipped with edgewatch, and the one way to read them.

The package folder holds a trimmed subset of the Case Western Reserve University records (README.md
beside this file: provenance, citation, terms): every 0 HP drive-end fault record and the normal
record, int16 with a scale in compressed ``.npz``, listed in ``records.json``. A folder of the full
records (float32 ``.npy`` files with the same ``records.json`` layout) reads the same way, so the
tests, the demo and the benchmarks can run on either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import InputError

BUNDLED = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Record:
    """One drive-end recording: what was wrong with the bearing, and how it was sampled."""

    name: str  # the file's stem, e.g. "IR007_0": the same in the bundled and the full set
    path: Path
    fault: str  # "normal" | "inner_race" | "outer_race" | "ball"
    fault_diameter_in: float
    cwru_record: int  # the Bearing Data Center's record number
    sample_rate_hz: float
    rpm: float  # measured shaft speed, as CWRU lists it

    def samples(self) -> np.ndarray:
        """(n,) float32 acceleration in g."""
        try:
            if self.path.suffix == ".npz":
                with np.load(self.path) as stored:
                    signal = stored["samples"].astype(np.float32) * np.float32(stored["scale_g"])
            else:
                signal = np.load(self.path).astype(np.float32)
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"cannot read CWRU record {self.path}: {exc}") from exc
        if signal.ndim != 1 or signal.size == 0 or not np.all(np.isfinite(signal)):
            raise InputError(f"CWRU record {self.path} is not a non-empty 1-D series of finite values")
        return signal


def records(folder: Path = BUNDLED) -> dict[str, Record]:
    """Every record ``folder/records.json`` lists, by name."""
    manifest = folder / "records.json"
    try:
        listed = json.loads(manifest.read_text(encoding="utf-8"))
        found = [Record(Path(entry["file"]).stem, folder / entry["file"], entry["fault"],
                        float(entry["fault_diameter_in"]), int(entry["cwru_record"]),
                        float(entry["sample_rate_hz"]), float(entry["rpm"])) for entry in listed]
    except OSError as exc:
        raise InputError(f"no CWRU records in {folder}: cannot read {manifest} ({exc})") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{manifest} is not a CWRU records list: {exc!r}") from exc
    return {record.name: record for record in found}
