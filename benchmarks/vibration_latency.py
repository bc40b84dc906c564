"""Capture-to-verdict latency of one vibration burst on this machine, per reader and rate.

For each burst shape (rate, length) the time from the start of capture to the fused verdict is
split into capture (the burst's own duration: the sensor must record it, plus what the reader
adds: an ``arecord`` process through ALSA, a Mosquitto round trip for a wireless node) and
judgement (health checks, speed estimate, diagnosis, learned normal, fusion). The baseline, in
the same run, is the judgement at a known speed (``speed_range`` 0: no speed estimate), so the
ratio is what finding the speed costs.

    python benchmarks/vibration_latency.py [--repeats 9]

The ALSA row needs alsa-utils (arecord); the MQTT row needs mosquitto; either is skipped otherwise.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import TypeAdapter

from bench.healthy_signals import healthy_burst
from edge.fusion.config import FusionConfig
from edge.fusion.fuse import fuse
from edge.sensors.analysis import SensorAnalyzer
from edge.sensors.base import Reading
from edge.sensors.config import SensorConfig
from edge.sensors.plugins import build_reader

SENSOR = TypeAdapter(SensorConfig)
SHAPES = ((12800, 1.0), (25600, 1.0), (48000, 1.0), (96000, 0.5))


def vibration(rpm_range: float) -> dict[str, Any]:
    return {"rpm": 1500 * 1.04, "bearing": "6205", "speed_range": rpm_range}


def fastest_ms(*runs: Callable[[], Any], repeats: int) -> list[float]:
    """The fastest of ``repeats`` runs of each, interleaved: on a shared machine the minimum is the
    cost itself, and interleaving exposes the runs compared to the same load."""
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for run, taken in zip(runs, times, strict=True):
            started = time.perf_counter()
            run()
            taken.append(time.perf_counter() - started)
    return [min(taken) * 1000.0 for taken in times]


def judge(config: Any, reading: Reading) -> Any:
    evidence = SensorAnalyzer([config]).analyse(reading)
    return fuse("press-1", [evidence], FusionConfig.model_validate({}), reading.timestamp)


def alsa_capture_ms(rate_hz: int, burst: np.ndarray, repeats: int) -> float | None:
    if shutil.which("arecord") is None:
        return None
    with tempfile.TemporaryDirectory() as home:
        raw = Path(home) / "capture.raw"
        raw.write_bytes(np.round(burst / 50.0 * 32767).astype("<i2").tobytes())
        (Path(home) / ".asoundrc").write_text(
            f'pcm.rig {{\n type file\n slave.pcm null\n file "/dev/null"\n infile "{raw}"\n format raw\n}}\n')
        os.environ["HOME"] = home
        config = SENSOR.validate_python({"name": "de", "type": "soundcard", "quantity": "vibration", "device": "rig",
                                         "rate_hz": rate_hz, "burst_samples": burst.size, "full_scale_v": 5.0})
        reader = build_reader(config)
        return fastest_ms(reader.read, repeats=repeats)[0]  # the file plugin does not pace: the overhead


def mqtt_transfer_ms(rate_hz: int, burst: np.ndarray, repeats: int) -> float | None:
    try:
        import paho.mqtt.publish as publish

        from bench.mosquitto import Mosquitto
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as folder:
        try:
            broker = Mosquitto(Path(folder)).start()
        except Exception:  # no mosquitto binary
            return None
        try:
            config = SENSOR.validate_python({"name": "de", "type": "mqtt", "quantity": "vibration", "host": broker.host,
                                             "port": broker.port, "topic": "node/burst", "payload": "burst",
                                             "max_payload_bytes": 4_000_000})
            reader = build_reader(config)
            reader.wait_connected(5)
            time.sleep(0.05)
            counts = np.round(burst / 0.001).astype("<i2")
            payload = json.dumps({"rate_hz": rate_hz, "dtype": "int16", "scale": 0.001,
                                  "samples": base64.b64encode(counts.tobytes()).decode()})

            def round_trip() -> None:
                publish.single("node/burst", payload, hostname=broker.host, port=broker.port, qos=1)
                reader.read()

            took = fastest_ms(round_trip, repeats=repeats)[0]
            reader.close()
            return took
        finally:
            broker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    print("| rate (Hz) | burst (s) | capture (ms) | ALSA overhead (ms) | MQTT transfer (ms) | judge at known speed "
          "(ms, baseline) | judge with speed estimate (ms) | ratio | capture-to-verdict, soundcard (ms) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for rate_hz, seconds in SHAPES:
        burst = healthy_burst(25.0, rate_hz, seconds, fixed_depth=0.0)
        reading = Reading("de", time.time(), "g", samples=burst, rate_hz=float(rate_hz))
        known, estimated = (SENSOR.validate_python({"name": "de", "type": "replay", "path": "x.npy", "rate_hz": rate_hz,
                                                    "quantity": "vibration", "vibration": vibration(r)})
                            for r in (0.0, 0.08))
        baseline_ms, full_ms = fastest_ms(lambda: judge(known, reading), lambda: judge(estimated, reading),  # noqa: B023
                                          repeats=args.repeats)
        alsa_ms = alsa_capture_ms(rate_hz, burst, args.repeats)
        mqtt_ms = mqtt_transfer_ms(rate_hz, burst, args.repeats)
        capture_ms = seconds * 1000.0
        total = capture_ms + (alsa_ms or 0.0) + full_ms
        print(f"| {rate_hz} | {seconds:g} | {capture_ms:.0f} | {'—' if alsa_ms is None else f'{alsa_ms:.0f}'} | "
              f"{'—' if mqtt_ms is None else f'{mqtt_ms:.0f}'} | {baseline_ms:.0f} | {full_ms:.0f} | "
              f"{full_ms / baseline_ms:.2f} | {total:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
