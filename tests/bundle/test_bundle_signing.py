"""Signed bundles: ``edgewatch bundle keygen`` / ``sign``, and boards that trust only their keys."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

from edge.bundle import signing
from edge.bundle.load import load_bundle
from edge.bundle.manifest import MANIFEST_NAME
from edge.bundle.signing import PASSPHRASE_ENV, SIGNATURE_NAME
from edge.cli.main import main
from edge.errors import BundleError, UsageError
from edge.vision.labels import remove_label
from tests.bundle_factory import make_bundle


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    return make_bundle(tmp_path / "bundle", [("normal", "ok"), ("oil leak", "fault")])


@pytest.fixture
def keys(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Two key pairs: 'old' and 'new' (as during a rotation); their private key paths."""
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    paths = {}
    for name in ("old", "new"):
        paths[name] = tmp_path / "keys" / name
        paths[name].parent.mkdir(exist_ok=True)
        assert main(["bundle", "keygen", str(paths[name])]) == 0
    capsys.readouterr()
    return paths


def public(key: Path) -> Path:
    return key.with_name(key.name + ".pub")


def sign(bundle: Path, key: Path) -> None:
    assert main(["bundle", "sign", str(bundle), "--key", str(key)]) == 0


def test_keygen_writes_a_private_key_only_its_owner_reads(keys: dict[str, Path]) -> None:
    assert stat.S_IMODE(keys["old"].stat().st_mode) == 0o600
    assert public(keys["old"]).read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert b"PRIVATE KEY" in keys["old"].read_bytes()
    assert main(["bundle", "keygen", str(keys["old"])]) == 2  # never overwritten


def test_a_good_signature_is_accepted(bundle_dir: Path, keys: dict[str, Path],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    sign(bundle_dir, keys["new"])
    bundle = load_bundle(bundle_dir, trusted_keys=[public(keys["new"])])
    assert bundle.manifest.kind == "image-text"
    assert main(["bundle", "verify", str(bundle_dir), "--trusted-key", str(public(keys["new"]))]) == 0
    assert "signature by a trusted key" in capsys.readouterr().out


def test_an_unsigned_bundle_is_refused(bundle_dir: Path, keys: dict[str, Path]) -> None:
    load_bundle(bundle_dir)  # fine on a board that trusts no keys
    with pytest.raises(BundleError, match=r"is not signed \(manifest.sig is missing\)"):
        load_bundle(bundle_dir, trusted_keys=[public(keys["new"])])


def test_a_tampered_manifest_is_refused(bundle_dir: Path, keys: dict[str, Path]) -> None:
    sign(bundle_dir, keys["new"])
    manifest = json.loads((bundle_dir / MANIFEST_NAME).read_text())
    manifest["labels"]["entries"][1]["severity"] = "ok"  # an oil leak would no longer be a fault
    (bundle_dir / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"the signature does not match .*manifest changed after signing"):
        load_bundle(bundle_dir, trusted_keys=[public(keys["new"])])


def test_a_tampered_model_file_is_refused(bundle_dir: Path, keys: dict[str, Path]) -> None:
    sign(bundle_dir, keys["new"])
    model = bundle_dir / "image.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"image.onnx does not match its sha256"):
        load_bundle(bundle_dir, verify=False, trusted_keys=[public(keys["new"])])  # signed: always verified


def test_an_unknown_key_is_refused_naming_both(bundle_dir: Path, keys: dict[str, Path]) -> None:
    sign(bundle_dir, keys["old"])
    signature = json.loads((bundle_dir / SIGNATURE_NAME).read_text())
    with pytest.raises(BundleError, match=rf"signed by key {signature['key_id']}, which is not trusted here"):
        load_bundle(bundle_dir, trusted_keys=[public(keys["new"])])


def test_a_forged_signature_claiming_a_trusted_key_is_refused(bundle_dir: Path, keys: dict[str, Path]) -> None:
    sign(bundle_dir, keys["old"])  # a real signature, by a key the board does not trust ...
    signature = json.loads((bundle_dir / SIGNATURE_NAME).read_text())
    sign(bundle_dir, keys["new"])
    trusted_id = json.loads((bundle_dir / SIGNATURE_NAME).read_text())["key_id"]
    signature["key_id"] = trusted_id  # ... relabelled as the trusted one
    (bundle_dir / SIGNATURE_NAME).write_text(json.dumps(signature))
    with pytest.raises(BundleError, match="the signature does not match"):
        load_bundle(bundle_dir, trusted_keys=[public(keys["new"])])


@pytest.mark.parametrize("content", ["", "{}", "not json", '{"algorithm": "ed25519", "key_id": 1, "signature": 2}',
                                     '{"algorithm": "ed25519", "key_id": "ab", "signature": "***"}', "x" * 10_000])
def test_a_malformed_signature_file_is_a_clear_error(bundle_dir: Path, keys: dict[str, Path], content: str) -> None:
    (bundle_dir / SIGNATURE_NAME).write_text(content)
    with pytest.raises(BundleError, match=r"manifest.sig (is not a readable bundle signature|is larger than)"):
        load_bundle(bundle_dir, trusted_keys=[public(keys["new"])])


def test_rotation_trusts_both_keys_until_the_old_one_is_dropped(bundle_dir: Path, keys: dict[str, Path]) -> None:
    both = [public(keys["old"]), public(keys["new"])]
    for key in ("old", "new"):
        sign(bundle_dir, keys[key])
        load_bundle(bundle_dir, trusted_keys=both)
    sign(bundle_dir, keys["old"])
    with pytest.raises(BundleError, match="not trusted here"):
        load_bundle(bundle_dir, trusted_keys=[public(keys["new"])])


def test_bad_trusted_key_files_are_named(bundle_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "garbage.pub").write_text("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    with pytest.raises(BundleError, match=r"trusted key .*garbage.pub is not a readable PEM public key"):
        load_bundle(bundle_dir, trusted_keys=[tmp_path / "garbage.pub"])
    with pytest.raises(BundleError, match=r"trusted key .*missing.pub does not exist"):
        load_bundle(bundle_dir, trusted_keys=[tmp_path / "missing.pub"])


def test_a_passphrase_protected_key_needs_its_passphrase(bundle_dir: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse")
    assert main(["bundle", "keygen", str(tmp_path / "locked")]) == 0
    assert b"ENCRYPTED" in (tmp_path / "locked").read_bytes()
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    assert main(["bundle", "sign", str(bundle_dir), "--key", str(tmp_path / "locked")]) == 2
    monkeypatch.delenv(PASSPHRASE_ENV)
    assert main(["bundle", "sign", str(bundle_dir), "--key", str(tmp_path / "locked")]) == 2
    assert PASSPHRASE_ENV in capsys.readouterr().err
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse")
    sign(bundle_dir, tmp_path / "locked")
    load_bundle(bundle_dir, trusted_keys=[tmp_path / "locked.pub"])


def test_signing_refuses_a_damaged_bundle(bundle_dir: Path, keys: dict[str, Path],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    (bundle_dir / "labels.npy").write_bytes(b"damaged")
    assert main(["bundle", "sign", str(bundle_dir), "--key", str(keys["new"])]) == 1
    assert "labels.npy" in capsys.readouterr().err and not (bundle_dir / SIGNATURE_NAME).exists()


def test_the_service_and_check_refuse_an_unsigned_bundle_at_start(bundle_dir: Path, keys: dict[str, Path],
                                                                  tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from edge.service.wiring import build_service
    from edge.settings import load_config

    (tmp_path / "temp.csv").write_text("temp_c\n40\n")
    config_path = tmp_path / "edgewatch.yaml"
    config_path.write_text(yaml.safe_dump({
        "state_dir": str(tmp_path / "state"),
        "model": {"bundle": str(bundle_dir), "trusted_keys": [str(public(keys["new"]))]},
        "assets": [{"id": "pump", "sensors": [{"name": "temp", "type": "replay", "path": "temp.csv",
                                                "quantity": "temperature", "unit": "degC"}]}],
    }))
    config = load_config(config_path)
    with pytest.raises(BundleError, match="is not signed"):
        build_service(config, max_checks=1)
    from edge.service.reload import check_config

    with pytest.raises(BundleError, match="is not signed"):  # a reload to it is refused the same way
        check_config(config_path)
    image = tmp_path / "frame.png"
    from PIL import Image

    Image.new("RGB", (32, 32), (90, 120, 160)).save(image)
    argv = ["check", "--config", str(config_path), "--bundle", str(bundle_dir), "--image", str(image)]
    assert main(argv) == 1
    assert "is not signed" in capsys.readouterr().err


def test_labels_on_a_signed_bundle_need_resign_and_stay_verifiable(
        bundle_dir: Path, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    sign(bundle_dir, keys["new"])
    before = {path.name: path.read_bytes() for path in bundle_dir.iterdir()}
    assert main(["labels", "remove", str(bundle_dir), "--name", "oil leak"]) == 2
    assert main(["labels", "add", str(bundle_dir), "--name", "smoke"]) == 2  # refused before any model loads
    assert "is signed: changing its labels would void its manifest.sig" in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in bundle_dir.iterdir()} == before  # nothing changed or deleted
    load_bundle(bundle_dir, trusted_keys=[public(keys["new"])])

    assert main(["labels", "remove", str(bundle_dir), "--name", "oil leak", "--resign", str(keys["new"])]) == 0
    assert "signed again with" in capsys.readouterr().out
    bundle = load_bundle(bundle_dir, trusted_keys=[public(keys["new"])])  # a board that trusts the key starts
    assert bundle.manifest.labels is not None and [e.name for e in bundle.manifest.labels.entries] == ["normal"]
    assert bundle.label_embeddings().shape == (1, 4)
    assert "labels.npy" not in {path.name for path in bundle_dir.iterdir()}  # old labels gone only after the commit


def test_a_wrong_resign_key_changes_nothing(bundle_dir: Path, keys: dict[str, Path], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    sign(bundle_dir, keys["new"])
    before = {path.name: path.read_bytes() for path in bundle_dir.iterdir()}
    not_a_key = tmp_path / "config.yaml"
    not_a_key.write_text("assets: []\n")
    assert main(["labels", "remove", str(bundle_dir), "--name", "oil leak", "--resign", str(not_a_key)]) == 2
    assert "is not a readable PEM private key" in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in bundle_dir.iterdir()} == before


def test_a_failed_signature_write_keeps_the_old_labels(bundle_dir: Path, keys: dict[str, Path],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The old embeddings are deleted only after the new manifest and its signature are in place."""
    sign(bundle_dir, keys["new"])

    def disk_full(root: Path, manifest_bytes: bytes, private_key: object) -> str:
        raise UsageError(f"cannot write {root / SIGNATURE_NAME}: [Errno 28] No space left on device")

    monkeypatch.setattr(signing, "sign_manifest", disk_full)
    with pytest.raises(UsageError, match="No space left"):
        remove_label(bundle_dir, "oil leak", keys["new"])
    assert (bundle_dir / "labels.npy").is_file()
