"""What a larger model input costs: EfficientNet-Lite0 INT8 bundles exported at several ``--input-size``.

For each size the real network is exported with static INT8 (calibrated on the photos and ELPV cells
of ``bench.image_sets``, as the export tests do: ELPV cells alone are so alike that the gate's rank
correlation on a handful of held-back cells is noise, and the export falls back to weight-only) unless
``--bundles DIR`` already holds ``DIR/<px>``, and a profile is enrolled from normal ELPV cells. Then
one frame is scored on the board path, the sizes interleaved round by round (a burst of load on
the shared machine hits every size of a round alike): per size the median of

  * inference ms: the INT8 model plus the aggregation of its maps into patch features, as the
    board's ``timings_ms["inference"]`` reports it;
  * heads ms: the k-NN and patch heads against the enrolled memory (``timings_ms["heads"]``);

and the median of the per-round ratios to the first size (224 px by default), plus the bundle size
and what the export shipped (plain INT8, or weight-only INT8 when plain INT8 missed the gate).

    python benchmarks/input_size_cost.py [--sizes 224,320,448] [--bundles DIR] [--rounds 30] [--threads 1]

Frames are scored by ``VisionScorer``, the scorer inside the service's vision stage, not by a whole
check: the figures are the model's and the heads' share of a frame, which only its timings split.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np

from bench.image_sets import elpv_cells, write_real_images
from edge.bundle.load import load_bundle
from edge.vision.encoder import ImageEncoder, RuntimeOptions
from edge.vision.enrollment import build_profile
from edge.vision.pipeline import VisionScorer, embed_many
from edge.vision.preprocess import prepare
from edge.vision.profile import bundle_fingerprint
from export.pipeline import ExportRequest, run


def bundle_for(size_px: int, folder: Path, calibration: Path) -> Path:
    """``folder/<size_px>``, exported there first when it is not a bundle yet."""
    out = folder / str(size_px)
    if not (out / "manifest.json").is_file():
        run(ExportRequest(model="efficientnet-lite0", out=out, calibration=calibration, input_size_px=size_px,
                          force=out.exists(), progress=False))
    return out


def scorer_for(bundle_dir: Path, normal: list[Path], threads: int) -> VisionScorer:
    """The bundle's encoder and heads, with a profile enrolled on ``normal`` cells."""
    bundle = load_bundle(bundle_dir)
    encoder = ImageEncoder.load(bundle, RuntimeOptions(threads=threads))
    embeddings, patches = embed_many(encoder, normal)
    return VisionScorer(encoder, build_profile(bundle_fingerprint(bundle), embeddings, patches))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="224,320,448", help="Comma-separated input sizes in px; the first "
                        "is the baseline of the ratios.")
    parser.add_argument("--bundles", type=Path, help="Folder of bundles named by size (exported there when missing).")
    parser.add_argument("--rounds", type=int, default=30, help="Interleaved rounds of one frame per size.")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (0: every core).")
    parser.add_argument("--normal", type=int, default=30, help="Normal ELPV cells enrolled per bundle.")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    paths, probabilities = elpv_cells()
    normal_ids = np.flatnonzero(probabilities == 0)
    frame = paths[int(np.flatnonzero(probabilities == 1)[0])]  # a cracked cell, 300x300 px
    with tempfile.TemporaryDirectory(prefix="input-size-") as tmp_name:
        tmp = Path(tmp_name)
        calibration = write_real_images(tmp / "photos", elpv_count=40)
        folder = args.bundles or tmp
        folder.mkdir(parents=True, exist_ok=True)
        bundles = {px: bundle_for(px, folder, calibration) for px in sizes}
        normal = [paths[i] for i in normal_ids[:: len(normal_ids) // args.normal][: args.normal]]
        scorers = {px: scorer_for(bundles[px], normal, args.threads) for px in sizes}
        tensors = {px: prepare(frame, scorer.encoder.bundle.manifest.preprocessing)
                   for px, scorer in scorers.items()}
        timings: dict[int, dict[str, list[float]]] = {px: {"inference": [], "heads": []} for px in sizes}
        for round_index in range(args.rounds + 2):  # the first two rounds warm up
            order = sizes[round_index % len(sizes):] + sizes[: round_index % len(sizes)]
            for px in order:
                scorer = scorers[px]
                result = scorer.score_encoded(tensors[px], scorer.encoder.encode(tensors[px].tensor))
                if round_index >= 2:
                    for stage in ("inference", "heads"):
                        timings[px][stage].append(result.timings_ms[stage])
        base = sizes[0]
        print(f"{args.rounds} interleaved rounds, {args.threads or 'all'} thread(s), one ELPV cell, "
              f"{len(normal)} normal cells enrolled; ratios: median per round vs {base} px\n")
        print("| input | patch grid | quantization | inference ms | x | heads ms | x | bundle MB |")
        print("|---|---|---|---|---|---|---|---|")
        for px in sizes:
            ratio = {stage: statistics.median(a / b for a, b in zip(timings[px][stage], timings[base][stage],
                                                                    strict=True))
                     for stage in ("inference", "heads")}
            grid = scorers[px].encoder.patch_grid or (0, 0)
            manifest = scorers[px].encoder.bundle.manifest
            size_mb = sum(e.bytes for e in manifest.files) / 1e6
            shipped = "weight-only INT8" if manifest.quantization.weight_only else "INT8"
            print(f"| {px} px | {grid[0]}x{grid[1]} | {shipped} | {statistics.median(timings[px]['inference']):.1f} | "
                  f"{ratio['inference']:.2f} | {statistics.median(timings[px]['heads']):.1f} | {ratio['heads']:.2f} | "
                  f"{size_mb:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
