"""What the outputs cost the check loop and a status-page client, measured against bare baselines.

1. ``MqttSink.publish(verdict)`` with the broker up and with it away (buffering), against the
   baseline ``json.dumps(verdict.to_dict())`` that any output must do anyway.
2. ``GET /api/verdicts?limit=100`` and ``GET /api/assets`` over real HTTP on 127.0.0.1, against
   calling ``History.verdicts(limit=100)`` directly.

    python benchmarks/outputs_overhead.py [--verdicts 5000] [--requests 200] [--publishes 2000]

Starts its own Mosquitto (the Debian package) on a free port; prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.mosquitto import Mosquitto
from bench.samples import asset, verdict
from edge.evidence import Condition
from edge.outputs.config import HttpSettings, MqttSettings
from edge.outputs.http_api import HttpApi
from edge.outputs.metrics import Metrics
from edge.outputs.mqtt import MqttSink
from edge.store.history import History


def per_call_us(function: Callable[[int], Any], calls: int) -> dict[str, float]:
    times = []
    for index in range(calls):
        start = time.perf_counter()
        function(index)
        times.append((time.perf_counter() - start) * 1e6)
    times.sort()
    return {"p50_us": round(statistics.median(times), 1), "p95_us": round(times[int(0.95 * (calls - 1))], 1)}


def mqtt_publish(folder: Path, publishes: int) -> dict[str, Any]:
    broker = Mosquitto(folder / "broker").start()
    sample = [verdict(timestamp=float(i), velocity_rms_mm_s=1.0 + i % 7) for i in range(publishes)]
    baseline = per_call_us(lambda i: json.dumps(sample[i].to_dict()), publishes)
    settings = MqttSettings(host=broker.host, port=broker.port, buffer_size=publishes)
    sink = MqttSink(settings, [asset()], lambda *_: None).start()
    try:
        sink.wait_connected(10)
        connected = per_call_us(lambda i: sink.publish(sample[i]), publishes)
        broker.stop()
        while sink.connected:
            time.sleep(0.01)
        away = per_call_us(lambda i: sink.publish(sample[i]), publishes)
        buffered = sink.buffered
    finally:
        sink.close()
        broker.stop()
    return {"json_dumps_baseline": baseline, "publish_connected": connected, "publish_broker_away": away,
            "buffered_while_away": buffered,
            "connected_vs_baseline_p50": round(connected["p50_us"] / baseline["p50_us"], 2),
            "away_vs_baseline_p50": round(away["p50_us"] / baseline["p50_us"], 2)}


def http_reads(folder: Path, verdicts: int, requests: int) -> dict[str, Any]:
    with History(folder / "history.sqlite3") as history:
        for index in range(verdicts):
            condition = Condition.WARNING if index % 50 == 0 else Condition.OK
            history.add(verdict("press-1" if index % 2 else "pump-2", condition, timestamp=1e9 + index * 30))
        direct = per_call_us(lambda i: history.verdicts(asset="press-1", limit=100), requests)
        with HttpApi(HttpSettings(port=0), history, Metrics(), [asset("press-1"), asset("pump-2")]) as api:
            def get(path: str) -> Callable[[int], bytes]:
                return lambda i: urllib.request.urlopen(api.url + path, timeout=10).read()
            listing = per_call_us(get("/api/verdicts?asset=press-1&limit=100"), requests)
            assets = per_call_us(get("/api/assets"), requests)
    return {"stored_verdicts": verdicts, "history_verdicts_100_baseline": direct,
            "http_verdicts_100": listing, "http_assets": assets,
            "http_vs_direct_p50": round(listing["p50_us"] / direct["p50_us"], 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verdicts", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--publishes", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        results = {"mqtt": mqtt_publish(Path(folder), args.publishes),
                   "http": http_reads(Path(folder), args.verdicts, args.requests)}
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
