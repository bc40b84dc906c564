"""Does the service's memory stay flat? Run examples/demo.yaml flat out and watch the RSS.

Every interval is shrunk to 10 ms so a minute covers thousands of checks (days of a real
installation's check count per asset): camera replay, frame health, vision, sensor polling and
analytics, fusion, history with frames, the HTTP API. The baseline is the RSS after a warm-up in
the same run; the result is the growth per thousand checks after it.

    python benchmarks/service_memory.py --seconds 60
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import yaml

from edge.service.wiring import build_service
from edge.settings import load_config

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo.yaml"


def rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup-s", type=float, default=10.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgewatch-memory-"))
    try:
        shutil.copytree(DEMO.parent / "demo", work / "demo")
        document = yaml.safe_load(DEMO.read_text())
        for asset in document["assets"]:
            asset["check_interval_s"] = 0.01
            for sensor in asset.get("sensors", []):
                sensor["interval_s"] = 0.01
        document["state_dir"] = str(work / "state")
        document["log_level"] = "warning"
        document["outputs"] = {"http": {"port": 0}}
        (work / "demo.yaml").write_text(yaml.safe_dump(document))
        service = build_service(load_config(work / "demo.yaml"))
        runner = threading.Thread(target=service.run)
        runner.start()
        start = time.monotonic()
        samples: list[tuple[float, int, float]] = []
        while (elapsed := time.monotonic() - start) < args.seconds:
            time.sleep(1.0)
            samples.append((elapsed, service.completed_checks, rss_mib()))
        service.request_stop()
        runner.join(60)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    after = [s for s in samples if s[0] >= args.warmup_s]
    (t0, checks0, rss0), (t1, checks1, rss1) = after[0], after[-1]
    print(f"{'t (s)':>6} {'checks':>8} {'RSS (MiB)':>10}")
    for elapsed, checks, rss in samples[:: max(1, len(samples) // 12)]:
        print(f"{elapsed:6.0f} {checks:8d} {rss:10.1f}")
    per_thousand = (rss1 - rss0) / max(1, checks1 - checks0) * 1000
    print(f"baseline after {t0:.0f} s warm-up: {rss0:.1f} MiB at {checks0} checks")
    print(f"end: {rss1:.1f} MiB at {checks1} checks ({checks1 / t1:.0f} checks/s)")
    print(f"growth after warm-up: {rss1 - rss0:+.1f} MiB over {checks1 - checks0} checks "
          f"({per_thousand:+.3f} MiB per 1000 checks; ratio end/baseline {rss1 / rss0:.3f})")


if __name__ == "__main__":
    main()
