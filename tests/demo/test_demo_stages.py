"""The demo reuses an earlier run's profile only when it was enrolled from the very same inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.demo import stages
from edge.errors import StorageError


def _inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    bundle, normal, examples = tmp_path / "bundle", tmp_path / "enroll", tmp_path / "examples"
    for folder in (bundle, normal, examples):
        folder.mkdir()
    (bundle / "manifest.json").write_text('{"files": {"image.onnx": "sha256:aa"}}', encoding="utf-8")
    (normal / "normal_0001.jpg").write_bytes(b"cell one")
    (normal / "normal_0002.jpg").write_bytes(b"cell two")
    (examples / "defective_0001.jpg").write_bytes(b"cracked")
    return bundle, normal, examples


def test_the_digest_changes_with_every_input(tmp_path: Path) -> None:
    bundle, normal, examples = _inputs(tmp_path)
    arguments = ["enroll", "--out", "profile.npz"]
    first = stages.inputs_digest(bundle, (normal, examples), arguments)
    assert stages.inputs_digest(bundle, (normal, examples), arguments) == first  # same inputs, same digest

    (normal / "normal_0002.jpg").write_bytes(b"another cell")  # another seed's cell
    changed_frame = stages.inputs_digest(bundle, (normal, examples), arguments)
    (bundle / "manifest.json").write_text('{"files": {"image.onnx": "sha256:bb"}}', encoding="utf-8")
    changed_bundle = stages.inputs_digest(bundle, (normal, examples), arguments)
    changed_arguments = stages.inputs_digest(bundle, (normal, examples), [*arguments, "--force"])
    (normal / "normal_0002.jpg").rename(normal / "normal_0003.jpg")  # same bytes, another frame name
    renamed = stages.inputs_digest(bundle, (normal, examples), [*arguments, "--force"])
    assert len({first, changed_frame, changed_bundle, changed_arguments, renamed}) == 5


def test_a_profile_is_current_only_with_its_stamp(tmp_path: Path) -> None:
    profile = tmp_path / "profile.npz"
    assert not stages.is_current(profile, "abc")  # nothing there yet
    profile.write_bytes(b"profile")
    assert not stages.is_current(profile, "abc")  # a profile an older demo left, without a stamp
    stages.remember(profile, "abc")
    assert stages.is_current(profile, "abc")
    assert not stages.is_current(profile, "abd")  # built from other inputs
    stages.forget(profile)  # a rebuild starts: a failed one must not pass for current
    assert not stages.is_current(profile, "abc")
    stages.forget(profile)  # forgetting twice is no error


def test_unreadable_inputs_are_a_clear_error(tmp_path: Path) -> None:
    bundle, normal, _ = _inputs(tmp_path)
    with pytest.raises(StorageError, match="enroll inputs"):
        stages.inputs_digest(bundle, (normal, tmp_path / "missing"), ["enroll"])
