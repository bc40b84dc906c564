from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge.bundle.load import load_bundle
from edge.bundle.manifest import MANIFEST_NAME
from edge.cli.main import main
from edge.errors import BundleError, ExportError
from export.bundle import staged_bundle
from tests.bundle_factory import make_bundle

LABELS = [("normal", "ok"), ("oil leak", "fault")]


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    return make_bundle(tmp_path / "bundle", LABELS)


def test_round_trip(bundle_dir: Path) -> None:
    bundle = load_bundle(bundle_dir)
    assert bundle.manifest.kind == "image-text"
    assert [label.name for label in bundle.manifest.labels.entries] == ["normal", "oil leak"]
    assert bundle.label_embeddings().shape == (2, 4)
    assert {entry.path for entry in bundle.manifest.files} == {"image.onnx", "labels.npy"}
    assert not list(bundle_dir.parent.glob(".*partial")), "staging folder left behind"


def test_flipped_byte_is_refused_naming_the_file(bundle_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = bundle_dir / "image.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"image\.onnx does not match its sha256"):
        load_bundle(bundle_dir)
    assert main(["bundle", "verify", str(bundle_dir)]) == 1
    assert "image.onnx" in capsys.readouterr().err


def test_truncated_file_is_refused(bundle_dir: Path) -> None:
    path = bundle_dir / "labels.npy"
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(BundleError, match=r"labels\.npy is .* bytes, manifest says"):
        load_bundle(bundle_dir)


def test_missing_file_is_refused(bundle_dir: Path) -> None:
    (bundle_dir / "image.onnx").unlink()
    with pytest.raises(BundleError, match=r"file image\.onnx is missing"):
        load_bundle(bundle_dir)


def _format_2(manifest: dict[str, Any]) -> None:
    manifest["format_version"] = 2


def _escape_the_bundle(manifest: dict[str, Any]) -> None:
    manifest["files"][0]["path"] = "../outside.onnx"


def _unlist_labels(manifest: dict[str, Any]) -> None:
    manifest["files"] = [f for f in manifest["files"] if f["path"] != "labels.npy"]


@pytest.mark.parametrize(("tamper", "message"), [
    (_format_2, "format version 2 is not supported"),
    (_escape_the_bundle, "must be a relative path inside the bundle"),
    (_unlist_labels, r"files not listed with a hash: labels\.npy"),
])
def test_a_tampered_manifest_is_refused(
    bundle_dir: Path, tamper: Callable[[dict[str, Any]], None], message: str
) -> None:
    path = bundle_dir / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    tamper(manifest)
    path.write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle_dir)


def test_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"manifest\.json is missing"):
        load_bundle(tmp_path)
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "absent")


def test_existing_output_needs_force(bundle_dir: Path) -> None:
    with pytest.raises(ExportError, match="already exists"):
        make_bundle(bundle_dir)


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    with pytest.raises(RuntimeError):
        with staged_bundle(out) as staged:
            staged.path("image.onnx").write_bytes(b"x")
            raise RuntimeError("export failed half way")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_inspect_prints_summary(bundle_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bundle", "inspect", str(bundle_dir)]) == 0
    out = capsys.readouterr().out
    assert "oil leak (fault)" in out and "image.onnx" in out
