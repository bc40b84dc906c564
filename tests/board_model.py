"""A real model for the arm64-vs-x86 check: EfficientNet-Lite0's ImageNet weights as a static INT8
bundle, exported and enrolled on the workstation, scored by both sides with the same script.

The export (about 90 s on a shared two-core machine) is cached under the board cache, keyed by
the exporter's code, the torch and onnxruntime versions and the calibration images, so a second
run on the same machine only enrols and scores.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from board.host import CACHE_DIR
from tests.board_support import REPO_ROOT

MODEL_CACHE = CACHE_DIR / "models"
NORMAL_CELLS, HELD_OUT_CELLS, DEFECT_CELLS = 16, 6, 6  # per folder; as many defective cells again as examples
SCORE_SCRIPT = '''\
"""Score every image of a folder with a bundle and a profile, as 'edgewatch check' does; save the
condition and p-value of each (JSON) and the embeddings ((N, D) float32)."""
import json
import sys
from pathlib import Path

import numpy as np

from edge.bundle.load import load_bundle
from edge.vision.encoder import RuntimeOptions
from edge.vision.evidence import to_evidence
from edge.vision.pipeline import VisionScorer
from edge.vision.profile import load_profile

bundle = load_bundle(Path(sys.argv[1]), verify=True)
scorer = VisionScorer.load(bundle, load_profile(Path(sys.argv[2]), bundle), RuntimeOptions(threads=1))
rows, embeddings = [], []
for frame in sorted(Path(sys.argv[3]).iterdir()):
    prepared, encoded = scorer.embed(frame)
    result = scorer.score_encoded(prepared, encoded)
    condition = to_evidence(result, "camera").condition
    rows.append({"frame": frame.name, "p_value": result.p_value, "condition": condition and condition.value})
    embeddings.append(encoded.embedding)
Path(sys.argv[4]).write_text(json.dumps(rows), encoding="utf-8")
np.save(sys.argv[5], np.stack(embeddings))
'''


def elpv_frames(folder: Path) -> tuple[Path, Path, Path]:
    """Real solar-cell images: ``normal/`` and labelled ``defect/`` examples to enrol on, and ``frames/`` to
    score (held-out normal and defective cells, so both sides must agree on conditions that differ)."""
    from bench.image_sets import elpv_cells

    paths, probabilities = elpv_cells()
    good, bad = np.flatnonzero(probabilities == 0)[::40], np.flatnonzero(probabilities == 1)[::40]
    normal, defect, frames = folder / "normal", folder / "defect", folder / "frames"
    for target, members in ((normal, good[:NORMAL_CELLS]), (frames, good[NORMAL_CELLS:NORMAL_CELLS + HELD_OUT_CELLS]),
                            (defect, bad[:DEFECT_CELLS]), (frames, bad[DEFECT_CELLS:2 * DEFECT_CELLS])):
        target.mkdir(parents=True, exist_ok=True)
        for index in members:
            shutil.copyfile(paths[index], target / paths[index].name)
    return normal, defect, frames


def _cache_key(calibration: Path) -> str:
    digest = hashlib.sha256()
    for source in sorted((REPO_ROOT / "export").rglob("*.py")):
        digest.update(source.read_bytes())
    for package in ("torch", "onnxruntime", "onnx"):
        digest.update(importlib.metadata.version(package).encode())
    for image in sorted(calibration.iterdir()):
        digest.update(image.name.encode() + image.read_bytes())
    return digest.hexdigest()[:12]


def edgewatch(*args: str | Path, timeout_s: float = 900) -> str:
    """The workstation's ``edgewatch`` command, as a user runs it."""
    done = subprocess.run([sys.executable, "-m", "edge", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout_s, check=False, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert done.returncode == 0, f"edgewatch {' '.join(map(str, args))} exited {done.returncode}: {done.stderr}"
    return done.stdout


def exported_bundle(calibration: Path) -> tuple[Path, float]:
    """The INT8 EfficientNet-Lite0 bundle from ``edgewatch export`` (cached); and the seconds the export took
    (0 when cached)."""
    import time

    bundle = MODEL_CACHE / f"efficientnet-lite0-{_cache_key(calibration)}"
    if (bundle / "manifest.json").is_file():
        return bundle, 0.0
    MODEL_CACHE.mkdir(parents=True, exist_ok=True)
    partial = bundle.with_name(f"{bundle.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    start = time.monotonic()
    edgewatch("export", "--model", "efficientnet-lite0", "--calibration", calibration, "--out", partial)
    os.replace(partial, bundle)
    return bundle, time.monotonic() - start
