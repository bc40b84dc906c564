"""Releases: deterministic packing, the signed desired state, safe unpacking and bounded downloads."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from bench.ports import free_port
from edge.bundle.load import load_bundle
from edge.bundle.signing import key_id, load_trusted_keys
from edge.errors import BundleError, UsageError
from edge.fleet.download import download
from edge.fleet.layout import Layout
from edge.fleet.release import desired_message, pack_release, unpack_release, verify_desired
from tests.fleet_support import key_pair, release_folder, serving


@pytest.fixture()
def signed(tmp_path: Path) -> tuple[Any, Path, Path]:
    key, public = key_pair(tmp_path / "release.key")
    return key, public, release_folder(tmp_path / "v2", key, "2026-12-01T00:00:00+00:00")


def test_packing_is_deterministic_and_unpacks_to_a_verified_bundle(signed: tuple[Any, Path, Path],
                                                                  tmp_path: Path) -> None:
    _, public, bundle = signed
    first = pack_release(bundle, "2.0", tmp_path / "a").read_bytes()
    (bundle / "labels.npy").touch()  # a newer mtime changes nothing in the archive
    second = pack_release(bundle, "2.0", tmp_path / "b").read_bytes()
    assert first == second
    root = unpack_release(tmp_path / "a" / "edgewatch-2.0.tar", tmp_path / "unpacked")
    assert load_bundle(root, verify=True, trusted_keys=[public]).manifest.created_at.startswith("2026-12-01")


def test_a_link_in_the_bundle_is_refused(signed: tuple[Any, Path, Path], tmp_path: Path) -> None:
    _, _, bundle = signed
    (bundle / "extra").symlink_to("/etc/passwd")
    with pytest.raises(UsageError, match="is a link"):
        pack_release(bundle, "2.0", tmp_path / "out")


def test_the_desired_state_verifies_only_unchanged_and_from_a_trusted_key(signed: tuple[Any, Path, Path],
                                                                        tmp_path: Path) -> None:
    key, public, bundle = signed
    archive = pack_release(bundle, "2.0", tmp_path / "out")
    message = desired_message("2.0", "http://127.0.0.1:9/edgewatch-2.0.tar", archive, key, serial=7)
    trusted = load_trusted_keys([public])
    desired = verify_desired(message, trusted)
    assert (desired.version, desired.size, desired.serial) == ("2.0", archive.stat().st_size, 7)

    moved = json.loads(message)
    moved["url"] = "http://127.0.0.1:9/elsewhere.tar"
    with pytest.raises(BundleError, match="does not match its fields"):
        verify_desired(json.dumps(moved).encode(), trusted)
    raised = {**json.loads(message), "serial": 10**15}  # a replay made to look new
    with pytest.raises(BundleError, match="does not match its fields"):
        verify_desired(json.dumps(raised).encode(), trusted)
    other, _ = key_pair(tmp_path / "other.key")
    with pytest.raises(BundleError, match="not trusted here"):
        verify_desired(desired_message("2.0", desired.url, archive, other, serial=8), trusted)
    with pytest.raises(BundleError, match="malformed"):
        verify_desired(json.dumps({**moved, "url": "file:///etc/passwd"}).encode(), trusted)
    with pytest.raises(BundleError, match="malformed"):
        verify_desired(json.dumps({**moved, "serial": "8"}).encode(), trusted)


def test_a_desired_state_without_a_serial_is_refused_naming_the_upgrade(signed: tuple[Any, Path, Path],
                                                                       tmp_path: Path) -> None:
    """What a workstation without replay protection published (signed over the four old fields)."""
    key, public, bundle = signed
    archive = pack_release(bundle, "2.0", tmp_path / "out")
    fields = {"version": "2.0", "url": "http://127.0.0.1:9/a.tar", "size": archive.stat().st_size,
              "sha256": hashlib.sha256(archive.read_bytes()).hexdigest()}
    value = key.sign(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode())
    old = {**fields, "signature": {"algorithm": "ed25519", "key_id": key_id(key.public_key()),
                                   "value": base64.b64encode(value).decode()}}
    with pytest.raises(BundleError, match=r"no serial.*upgrade edgewatch on the workstation.*fleet rollout"):
        verify_desired(json.dumps(old).encode(), load_trusted_keys([public]))


def test_a_release_carries_its_config_overrides_beside_the_bundle(signed: tuple[Any, Path, Path],
                                                                 tmp_path: Path) -> None:
    _, public, bundle = signed
    overrides = b"assets: {press-1: {check_interval_s: 5}}\n"
    plain = pack_release(bundle, "2.0", tmp_path / "a").read_bytes()
    carried = pack_release(bundle, "2.0", tmp_path / "b", overrides).read_bytes()
    assert plain != carried  # the signed sha256 covers the overrides too
    root = unpack_release(tmp_path / "b" / "edgewatch-2.0.tar", tmp_path / "unpacked")
    assert (root.parent / "overrides.yaml").read_bytes() == overrides
    assert load_bundle(root, verify=True, trusted_keys=[public])
    plain_root = unpack_release(tmp_path / "a" / "edgewatch-2.0.tar", tmp_path / "plain")
    assert not (plain_root.parent / "overrides.yaml").exists()


@pytest.mark.parametrize("name, kind", [("../escape", tarfile.REGTYPE), ("/abs", tarfile.REGTYPE),
                                        ("bundle/link", tarfile.SYMTYPE), ("other/file", tarfile.REGTYPE)])
def test_unpacking_refuses_what_leaves_the_bundle(tmp_path: Path, name: str, kind: bytes) -> None:
    archive = tmp_path / "bad.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(BundleError, match=r"outside bundle/|link or device"):
        unpack_release(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_download_checks_the_signed_hash_and_size(signed: tuple[Any, Path, Path], tmp_path: Path) -> None:
    key, public, bundle = signed
    served = tmp_path / "served"
    archive = pack_release(bundle, "2.0", served)
    trusted = load_trusted_keys([public])
    with serving(served) as base:
        desired = verify_desired(desired_message("2.0", f"{base}/{archive.name}", archive, key, serial=1), trusted)
        download(desired, tmp_path / "got.tar", timeout_s=5, attempts=1)
        assert (tmp_path / "got.tar").read_bytes() == archive.read_bytes()
        # a partial file from an interrupted try: this server ignores Range, so the whole file comes again
        (tmp_path / "again.tar.partial").write_bytes(b"junk" * 100)
        download(desired, tmp_path / "again.tar", timeout_s=5, attempts=1)
        assert (tmp_path / "again.tar").read_bytes() == archive.read_bytes()

        data = bytearray(archive.read_bytes())
        data[-600] ^= 1  # changed on the server after signing
        archive.write_bytes(bytes(data))
        with pytest.raises(BundleError, match="not the signed"):
            download(desired, tmp_path / "bad.tar", timeout_s=5, attempts=1)
        archive.write_bytes(bytes(data) + b"x" * 10)
        with pytest.raises(BundleError, match="larger than the signed"):
            download(desired, tmp_path / "big.tar", timeout_s=5, attempts=1)
        assert not (tmp_path / "bad.tar").exists() and not (tmp_path / "big.tar").exists()
    with pytest.raises(BundleError, match="after 2 tries"):  # the server is gone
        download(desired, tmp_path / "gone.tar", timeout_s=1, attempts=2)


def test_switching_replaces_current_in_one_step(signed: tuple[Any, Path, Path], tmp_path: Path) -> None:
    _, _, bundle = signed
    layout = Layout(tmp_path / "state")
    layout.install(bundle, "1.0")
    (layout.release("2.0") / "bundle").mkdir(parents=True)
    layout.switch("2.0")
    assert layout.running_version() == "2.0" and (layout.current / "bundle").is_dir()
    assert layout.load().running == "1.0"  # what was healthy last: the agent's to change
    with pytest.raises(Exception, match="not unpacked"):
        layout.switch("3.0")


def test_a_switch_whose_health_check_never_finished_is_undone_at_start(signed: tuple[Any, Path, Path],
                                                                       tmp_path: Path) -> None:
    """A power cut while 2.0 was being checked: the agent points back at 1.0 before the service is built."""
    from edge.fleet.agent import Agent
    from edge.settings import Config

    _, public, bundle = signed
    state = tmp_path / "state"
    layout = Layout(state)
    layout.install(bundle, "1.0")
    shutil.copytree(bundle, layout.release("2.0") / "bundle")
    layout.switch("2.0")
    config = Config.model_validate({
        "state_dir": str(state), "model": {"bundle": str(layout.current / "bundle"), "trusted_keys": [str(public)]},
        "assets": [{"id": "press-1", "cameras": [{"name": "panel", "type": "folder", "path": str(tmp_path)}]}],
        "outputs": {"mqtt": {"host": "127.0.0.1", "port": free_port()}},  # nothing listens: it retries quietly
        "fleet": {"enabled": True, "board": "b1"}})
    agent = Agent(config, reload=lambda: True, check=lambda release: None).start()
    try:
        assert layout.running_version() == "1.0"
    finally:
        agent.close()


def test_fleet_install_makes_the_first_release_current(signed: tuple[Any, Path, Path], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from edge.cli.main import main

    _, public, bundle = signed
    state = tmp_path / "state"
    config = tmp_path / "edgewatch.yaml"
    config.write_text(f"""
state_dir: {state}
model: {{bundle: {state}/fleet/current/bundle, trusted_keys: [{public}]}}
assets: [{{id: press-1, cameras: [{{name: panel, type: folder, path: {tmp_path}}}]}}]
outputs: {{mqtt: {{host: 127.0.0.1}}}}
fleet: {{enabled: true, board: b1}}
""")
    assert main(["fleet", "install", "--config", str(config), "--bundle", str(bundle), "--version", "1.0"]) == 0
    assert "release 1.0 installed" in capsys.readouterr().out
    assert Layout(state).load().running == "1.0"
    assert load_bundle(state / "fleet" / "current" / "bundle", trusted_keys=[public])
    assert main(["fleet", "install", "--config", str(config), "--bundle", str(bundle), "--version", "../x"]) == 2
