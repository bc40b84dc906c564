"""Test kernel modules for the emulated boards: which kernel they are built for, the cache, where they go."""

from __future__ import annotations

from pathlib import Path

import pytest

from board import kmod
from board.build import BuildRequest, build
from board.host import BuildError
from board.inject import Payload

ABI = "6.1.0-57-arm64"
STATUS = f"""\
Package: linux-image-arm64
Status: install ok installed
Version: 6.1.999-1

Package: linux-image-{ABI}
Status: install ok installed
Source: linux-signed-arm64 (6.1.192+3)
Version: 6.1.192-3
"""


def fake_root(tmp_path: Path, status: str = STATUS) -> Path:
    root = tmp_path / "root"
    (root / "lib/modules" / ABI).mkdir(parents=True)
    (root / "lib/modules" / ABI / "modules.dep").write_text("kernel/drivers/i2c/i2c-dev.ko:\n", encoding="utf-8")
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(status, encoding="utf-8")
    return root


def test_the_module_is_built_for_the_installed_kernel_package_not_the_meta_package(tmp_path: Path) -> None:
    assert kmod.kernel_package_version(fake_root(tmp_path), ABI) == "6.1.192-3"
    with pytest.raises(BuildError, match=r"no installed package linux-image-6\.1\.0-58-arm64"):
        kmod.kernel_package_version(fake_root(tmp_path / "other"), "6.1.0-58-arm64")


def test_a_module_built_for_that_kernel_is_reused_and_installed_under_updates(tmp_path: Path) -> None:
    root, cache = fake_root(tmp_path), tmp_path / "cache"
    cached = cache / "modules" / f"{ABI}-6.1.192-3" / "i2c-stub.ko"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"\x7fELF module")
    assert kmod.build_module(root, "drivers/i2c/i2c-stub.c", cache) == cached  # no download, no compiler
    assert kmod.install(root, [cached]) == [f"/lib/modules/{ABI}/updates/i2c-stub.ko"]
    assert (root / "lib/modules" / ABI / "updates/i2c-stub.ko").read_bytes() == b"\x7fELF module"


def test_test_modules_are_refused_for_a_users_base_image(tmp_path: Path) -> None:
    request = BuildRequest(out=tmp_path / "site.img", payload=Payload(tmp_path / "config.yaml", ()),
                           base=tmp_path / "raspios.img", test_modules=("drivers/i2c/i2c-stub.c",))
    with pytest.raises(BuildError, match="test modules apply to the image built without --base"):
        build(request)
