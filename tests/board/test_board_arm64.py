"""arm64 in the image's own root file system under qemu-user: the INT8 model agrees with x86, and a
subset of the unit tests passes (an arm64-only failure is caught before a board sees it).

qemu-user runs the arm64 instructions themselves, so onnxruntime takes its ARM int8 kernels here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from board import venv, wheelhouse
from board.build import Built
from tests.board_int8 import EMBED_SCRIPT, make_int8_bundle
from tests.board_model import SCORE_SCRIPT, edgewatch, elpv_frames, exported_bundle
from tests.board_support import REPO_ROOT

pytestmark = pytest.mark.board

# Everything that needs no x86-only tool (mosquitto, chromium), no export extra (torch, onnx) and no
# scikit-image: analytics, fusion, config, SQLite history and outbox, sensors, sources, vision heads.
ARM64_SUBSET = ("test_config", "test_cpu", "test_fusion", "test_history", "test_outbox", "test_outputs_messages",
                "test_sdnotify", "test_sensors_poller", "test_sensors_readers", "test_service_triggers",
                "test_sources", "test_sources_picamera2_import", "test_scalar_rules", "test_vibration",
                "test_vibration_cwru", "test_vibration_learned_normal", "test_vision_heads", "test_vision_providers")
# A command sensor's 0.3 s timeout is shorter than a Python start under qemu-user: emulation speed, not arm64.
SLOWER_THAN_EMULATION = "test_command_failures_are_sensor_errors"
# what the board's root and venv do not carry: a local mosquitto broker, and apprise for the example's notify URLs
NEEDS_THE_WORKSTATION = ("test_mqtt_reader_takes_the_newest_message", "test_mqtt_silence_is_an_error_not_a_repeat",
                         "test_cli_config_check_exit_codes")
MIN_COSINE = 0.999
MAX_P_VALUE_DIFFERENCE = 0.01


@pytest.fixture(scope="module")
def arm64_root(board_image: tuple[Built, int]) -> Iterator[Path]:
    """The image's root folder with /proc mounted; not /sys: the host's x86 CPU topology there makes
    onnxruntime's CPU detection crash under qemu-user (without it, it asks the kernel's hwcaps)."""
    root = board_image[0].root
    assert root is not None
    mounts = [(root / "proc", ["-t", "proc", "proc"])]
    for target, how in mounts:
        subprocess.run(["mount", *how, str(target)], check=True)
    try:
        yield root
    finally:
        for target, _ in reversed(mounts):
            subprocess.run(["umount", "--lazy", str(target)], check=False)


def in_root(root: Path, command: str, timeout_s: float) -> str:
    done = subprocess.run(["chroot", str(root), "/bin/sh", "-c", command], capture_output=True, text=True,
                          timeout=timeout_s, check=False)
    assert done.returncode == 0, f"'{command}' failed on arm64 ({done.returncode}): {done.stdout}{done.stderr}"
    return done.stdout


def photos(folder: Path) -> list[Path]:
    """Real photos (scikit-image's samples) and the demo's panels, as PNG files."""
    from PIL import Image
    from skimage import data

    folder.mkdir()
    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field"):
        Image.fromarray(getattr(data, name)()).save(folder / f"{name}.png")
    for frame in sorted((REPO_ROOT / "examples/demo/frames").iterdir()):
        shutil.copyfile(frame, folder / frame.name)
    return sorted(folder.iterdir())


def test_int8_embeddings_on_arm64_match_x86(arm64_root: Path, tmp_path: Path) -> None:
    assert in_root(arm64_root, "/opt/edgewatch/bin/python -c 'import platform; print(platform.machine())'",
                   120).strip() == "aarch64"
    work = arm64_root / "tmp/int8"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    frames = photos(work / "frames")
    make_int8_bundle(work / "bundle", frames, tmp_path)
    import onnx

    ops = {node.op_type for node in onnx.load(str(work / "bundle/image.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "MatMul"} <= ops  # int8 kernels, not a float model
    (work / "embed.py").write_text(EMBED_SCRIPT, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run([sys.executable, str(work / "embed.py"), str(work / "bundle"), str(work / "frames"),
                    str(tmp_path / "x86.npy")], check=True, env=env, timeout=300)
    in_root(arm64_root, "/opt/edgewatch/bin/python /tmp/int8/embed.py /tmp/int8/bundle /tmp/int8/frames "
            "/tmp/int8/arm64.npy", 900)
    x86, arm64 = np.load(tmp_path / "x86.npy"), np.load(work / "arm64.npy")
    assert x86.shape == arm64.shape == (len(frames), 32)
    cosine = np.sum(x86 * arm64, axis=1)  # both L2-normalised
    print(f"\narm64 vs x86 INT8 embedding cosine over {len(frames)} frames: min {cosine.min():.6f}, "
          f"mean {cosine.mean():.6f}; max abs difference {np.abs(x86 - arm64).max():.2e}")
    assert cosine.min() >= MIN_COSINE, f"arm64 and x86 disagree: cosine per frame {np.round(cosine, 5)}"


def test_a_real_int8_model_scores_the_same_on_arm64(arm64_root: Path, tmp_path: Path) -> None:
    """EfficientNet-Lite0 (ImageNet weights) exported to INT8 and enrolled on x86; the board's Python
    scores the same solar-cell frames: the same condition, the same p-value, the same embedding."""
    from bench.image_sets import write_real_images

    bundle, export_s = exported_bundle(write_real_images(tmp_path / "calibration", elpv_count=40))
    print(f"\nINT8 EfficientNet-Lite0 export: {f'{export_s:.0f} s' if export_s else 'cached'}")
    work = arm64_root / "tmp/model"
    shutil.rmtree(work, ignore_errors=True)
    normal, defect, frames = elpv_frames(work)
    shutil.copytree(bundle, work / "bundle")
    edgewatch("enroll", "--bundle", work / "bundle", "--normal", normal, "--label", f"cracked:fault={defect}",
              "--out", work / "profile.npz")
    (work / "score.py").write_text(SCORE_SCRIPT, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run([sys.executable, str(work / "score.py"), str(work / "bundle"), str(work / "profile.npz"),
                    str(frames), str(tmp_path / "x86.json"), str(tmp_path / "x86.npy")], check=True, env=env,
                   timeout=300)
    in_root(arm64_root, "cd /tmp/model && /opt/edgewatch/bin/python score.py bundle profile.npz frames "
            "arm64.json arm64.npy", 900)
    x86, arm64 = (json.loads(path.read_text(encoding="utf-8")) for path in (tmp_path / "x86.json", work / "arm64.json"))
    assert [row["frame"] for row in x86] == [row["frame"] for row in arm64]
    assert [row["condition"] for row in arm64] == [row["condition"] for row in x86]
    gaps = [abs(a["p_value"] - b["p_value"]) for a, b in zip(x86, arm64, strict=True)]
    cosine = np.sum(np.load(tmp_path / "x86.npy") * np.load(work / "arm64.npy"), axis=1)  # both L2-normalised
    print(f"EfficientNet-Lite0 INT8, {len(x86)} ELPV frames, arm64 vs x86: conditions "
          f"{[row['condition'] for row in arm64]}, largest p-value difference {max(gaps):.4f}, "
          f"embedding cosine min {cosine.min():.6f}")
    assert len({row["condition"] for row in x86}) >= 2, x86  # conditions that differ, to agree on
    assert max(gaps) <= MAX_P_VALUE_DIFFERENCE, gaps
    assert cosine.min() >= MIN_COSINE, f"arm64 and x86 disagree: cosine per frame {np.round(cosine, 5)}"


def test_unit_subset_passes_on_arm64(arm64_root: Path, tmp_path: Path) -> None:
    target = wheelhouse.target_python(arm64_root)
    wheelhouse.download(tmp_path, target, ["pytest>=8", "hypothesis>=6.100"])
    venv.install(arm64_root, target, sorted(tmp_path.glob("*.whl")))
    source = arm64_root / "tmp/src"
    shutil.rmtree(source, ignore_errors=True)
    for folder in ("tests", "bench", "examples"):
        shutil.copytree(REPO_ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(REPO_ROOT / "pyproject.toml", source / "pyproject.toml")
    files = " ".join(str(path.relative_to(REPO_ROOT)) for name in ARM64_SUBSET
                     for path in (REPO_ROOT / "tests").rglob(f"{name}.py"))
    deselected = " and ".join(f"not {name}" for name in (SLOWER_THAN_EMULATION, *NEEDS_THE_WORKSTATION))
    output = in_root(arm64_root, f"cd /tmp/src && /opt/edgewatch/bin/python -m pytest -q -p no:cacheprovider {files} "
                     f"-k '{deselected}'", 1500)
    print(f"\narm64 unit subset ({len(ARM64_SUBSET)} files): {output.strip().splitlines()[-1]}")
    assert " passed" in output and "failed" not in output and " error" not in output
