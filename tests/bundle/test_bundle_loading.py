"""What a board checks in a bundle is what it loads: no window between the hash and onnxruntime,
and no symbolic link inside a bundle."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

import edge.bundle.load
from edge.bundle.files import read_member
from edge.bundle.load import load_bundle
from edge.bundle.manifest import Manifest
from edge.bundle.signing import PASSPHRASE_ENV
from edge.cli.main import main
from edge.errors import BundleError
from edge.vision.encoder import ImageEncoder, RuntimeOptions
from tests.bundle_factory import make_bundle, write_tiny_onnx

RUNS = 50


@pytest.fixture
def signed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    """A bundle signed by a fresh key, and that key's public half (what a board trusts)."""
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    bundle, key = make_bundle(tmp_path / "bundle"), tmp_path / "keys" / "release"
    key.parent.mkdir()
    assert main(["bundle", "keygen", str(key)]) == 0
    assert main(["bundle", "sign", str(bundle), "--key", str(key)]) == 0
    capsys.readouterr()
    return bundle, key.with_name(key.name + ".pub")


def _embedding(encoder: ImageEncoder) -> np.ndarray:
    return encoder.encode_batch(np.full((1, 3, 8, 8), 0.5, dtype=np.float32))[0][0]  # (D,)


def swap_forever(target: Path, good: Path, tampered: Path) -> None:
    """Replace ``image.onnx`` with the good or the tampered model, alternately, as fast as it can (each swap
    one atomic rename, as an attacker with write access to the folder would); in its own process, so that
    it runs while the loader holds the GIL."""
    staging, turn = target.with_name(".swap"), 0
    while True:
        shutil.copyfile((good, tampered)[turn % 2], staging)
        os.replace(staging, target)
        turn += 1


def test_a_model_swapped_in_a_free_race_is_never_loaded(signed: tuple[Path, Path], tmp_path: Path) -> None:
    bundle_dir, trusted = signed
    good, tampered = tmp_path / "good.onnx", tmp_path / "tampered.onnx"
    shutil.copyfile(bundle_dir / "image.onnx", good)
    write_tiny_onnx(tampered, seed=7)  # same graph and size, other weights
    assert tampered.stat().st_size == good.stat().st_size
    options = RuntimeOptions(threads=1)
    expected = _embedding(ImageEncoder.load(load_bundle(bundle_dir, trusted_keys=[trusted]), options))
    swapper = multiprocessing.get_context("fork").Process(target=swap_forever, daemon=True,
                                                          args=(bundle_dir / "image.onnx", good, tampered))
    loaded_good = loaded_tampered = refused = 0
    swapper.start()
    try:
        for _ in range(RUNS):
            try:
                encoder = ImageEncoder.load(load_bundle(bundle_dir, trusted_keys=[trusted]), options)
            except BundleError as exc:
                assert "does not match its sha256" in str(exc)
                refused += 1
                continue
            if np.allclose(_embedding(encoder), expected):
                loaded_good += 1
            else:
                loaded_tampered += 1
    finally:
        swapper.terminate()
        swapper.join()
    assert loaded_tampered == 0, f"the tampered model was loaded in {loaded_tampered} of {RUNS} runs"
    assert refused > 0 and loaded_good + refused == RUNS  # the race did happen, and was caught


def test_a_model_swapped_right_after_verification_is_never_loaded(
        signed: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worst timing, every run: a thread swaps the model the moment verification is done."""
    bundle_dir, trusted = signed
    good, tampered = tmp_path / "good.onnx", tmp_path / "tampered.onnx"
    shutil.copyfile(bundle_dir / "image.onnx", good)
    write_tiny_onnx(tampered, seed=7)
    options = RuntimeOptions(threads=1)
    expected = _embedding(ImageEncoder.load(load_bundle(bundle_dir, trusted_keys=[trusted]), options))
    verified, swapped = threading.Event(), threading.Event()
    verify_files = edge.bundle.load.verify_files

    def verify_then_let_the_swap_happen(root: Path, manifest: Manifest) -> None:
        verify_files(root, manifest)
        verified.set()
        assert swapped.wait(10)
        swapped.clear()

    def swapper() -> None:
        for _ in range(RUNS):
            assert verified.wait(10)
            verified.clear()
            shutil.copyfile(tampered, bundle_dir / ".swap")
            os.replace(bundle_dir / ".swap", bundle_dir / "image.onnx")
            swapped.set()

    monkeypatch.setattr(edge.bundle.load, "verify_files", verify_then_let_the_swap_happen)
    thread = threading.Thread(target=swapper, daemon=True)
    thread.start()
    loaded_tampered = refused = 0
    for _ in range(RUNS):
        try:
            encoder = ImageEncoder.load(load_bundle(bundle_dir, trusted_keys=[trusted]), options)
            loaded_tampered += not np.allclose(_embedding(encoder), expected)
        except BundleError as exc:
            assert "image.onnx does not match its sha256" in str(exc)
            refused += 1
        shutil.copyfile(good, bundle_dir / "image.onnx")
    thread.join(10)
    assert loaded_tampered == 0, f"the tampered model was loaded in {loaded_tampered} of {RUNS} runs"
    assert refused == RUNS


def test_a_symlinked_model_is_refused(tmp_path: Path) -> None:
    bundle_dir = make_bundle(tmp_path / "bundle")
    outside = tmp_path / "elsewhere.onnx"
    (bundle_dir / "image.onnx").rename(outside)
    (bundle_dir / "image.onnx").symlink_to(outside)  # same bytes, so only the link itself is wrong
    with pytest.raises(BundleError, match=r"image.onnx is or goes through a symbolic link"):
        load_bundle(bundle_dir)


def test_a_symlinked_manifest_is_refused(tmp_path: Path) -> None:
    bundle_dir = make_bundle(tmp_path / "bundle")
    (bundle_dir / "manifest.json").rename(tmp_path / "manifest.json")
    (bundle_dir / "manifest.json").symlink_to(tmp_path / "manifest.json")
    with pytest.raises(BundleError, match=r"manifest.json is or goes through a symbolic link"):
        load_bundle(bundle_dir)


def test_a_link_on_the_way_or_a_fifo_is_refused(tmp_path: Path) -> None:
    bundle_dir = make_bundle(tmp_path / "bundle", [("normal", "ok"), ("rust", "fault")])
    data = (bundle_dir / "labels.npy").read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    (bundle_dir / "sub").mkdir()
    (bundle_dir / "labels.npy").rename(bundle_dir / "sub" / "labels.npy")
    assert read_member(bundle_dir, "sub/labels.npy", len(data), digest) == data
    (bundle_dir / "link").symlink_to(bundle_dir / "sub")
    with pytest.raises(BundleError, match=r"link/labels.npy is or goes through a symbolic link"):
        read_member(bundle_dir, "link/labels.npy", len(data), digest)
    os.mkfifo(bundle_dir / "pipe.npy")  # would block a reader forever
    with pytest.raises(BundleError, match=r"pipe.npy is not a regular file"):
        read_member(bundle_dir, "pipe.npy", len(data), digest)
