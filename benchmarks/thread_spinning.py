"""onnxruntime intra-op thread spinning on vs off, for a service that scores one frame every few seconds.

Spinning threads wait for the next operator busily instead of sleeping: each frame can finish
sooner, but the threads keep a core busy for a while after it, which the sensor analytics and the
board's other services then lack. This measures both sides in the same run, alternating the two
settings frame by frame: the median model latency of one frame, and the CPU seconds the process
spent per frame including the idle gap that follows it (``--gap-s``, the check interval in small).

    python benchmarks/thread_spinning.py --bundle bundles/efficientnet-lite0 [--frames 20] [--gap-s 0.5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

from edge.bundle.load import load_bundle
from edge.vision.encoder import ImageEncoder, RuntimeOptions


def measure(bundle_dir: Path, frames: int, gap_s: float, threads: int) -> dict[str, dict[str, float]]:
    """Per setting: median inference ms, and process CPU seconds per frame (frame + gap)."""
    bundle = load_bundle(bundle_dir)
    encoders = {spin: ImageEncoder.load(bundle, RuntimeOptions(threads=threads, spin_threads=spin))
                for spin in (False, True)}
    tensor = np.random.default_rng(0).normal(size=encoders[False].input_shape()).astype(np.float32)
    latency: dict[bool, list[float]] = {False: [], True: []}
    cpu_s: dict[bool, list[float]] = {False: [], True: []}
    for index in range(2 * frames):
        spin = bool(index % 2)
        time.sleep(gap_s)  # let the other setting's threads settle before this one is timed
        before = os.times()
        latency[spin].append(encoders[spin].encode(tensor).inference_ms)
        time.sleep(gap_s)  # the idle time until the next check: spinning threads burn CPU here
        after = os.times()
        cpu_s[spin].append((after.user - before.user) + (after.system - before.system))
    return {("on" if spin else "off"): {"inference_ms": statistics.median(latency[spin]),
                                         "cpu_s_per_frame": statistics.mean(cpu_s[spin])}
            for spin in (False, True)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=20, help="Frames per setting.")
    parser.add_argument("--gap-s", type=float, default=0.5, help="Idle seconds after each frame.")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="Intra-op threads.")
    args = parser.parse_args(argv)
    results = measure(args.bundle, args.frames, args.gap_s, args.threads)
    off, on = results["off"], results["on"]
    print(f"{args.threads} intra-op threads, {args.frames} frames per setting, {args.gap_s:g} s idle after each")
    print(f"{'spinning':<9} {'inference ms':>13} {'CPU s/frame':>12}")
    for name, figures in results.items():
        print(f"{name:<9} {figures['inference_ms']:13.1f} {figures['cpu_s_per_frame']:12.3f}")
    print(f"spinning on: {off['inference_ms'] / on['inference_ms']:.2f}x the speed, "
          f"{on['cpu_s_per_frame'] / max(off['cpu_s_per_frame'], 1e-9):.2f}x the CPU time per frame")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
