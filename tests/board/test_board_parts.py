"""The image builder's host-side parts, quickly and without root: the initramfs, the venv's wheels,
the user declaration and the command line. The whole path is proven by the board tests."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import pytest

from board import initramfs, venv
from board.host import BuildError
from board.inject import sysusers_conf
from board.wheelhouse import TargetPython, target_python
from edge.cli.main import build_parser, main

MODULES_DEP = """\
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko: kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio.ko:
kernel/fs/ext4/ext4.ko.xz: kernel/fs/jbd2/jbd2.ko.xz kernel/fs/mbcache.ko.xz kernel/lib/crc16.ko.xz
kernel/fs/jbd2/jbd2.ko.xz:
kernel/fs/mbcache.ko.xz:
kernel/lib/crc16.ko.xz:
kernel/drivers/net/virtio_net.ko: kernel/drivers/virtio/virtio.ko
"""


def test_modules_come_after_what_they_need_and_built_ins_are_skipped() -> None:
    order = initramfs.module_order(MODULES_DEP, ("virtio_mmio", "virtio_blk", "ext4"))
    names = [Path(p).name.split(".ko")[0] for p in order]
    assert set(names) == {"virtio", "virtio_ring", "virtio_blk", "ext4", "jbd2", "mbcache", "crc16"}
    assert names.index("virtio") < names.index("virtio_ring") < names.index("virtio_blk")
    assert names.index("ext4") > max(names.index(n) for n in ("jbd2", "mbcache", "crc16"))
    assert "virtio_net" not in names  # only what the root disk needs


def test_initramfs_is_a_cpio_the_kernel_unpacks(tmp_path: Path) -> None:
    import lzma

    root = tmp_path / "root"
    modules = root / "lib/modules/6.1.0-test-arm64"
    for line in MODULES_DEP.splitlines():
        path = modules / line.split(":")[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        content = f"module {path.name}".encode()
        path.write_bytes(lzma.compress(content) if path.name.endswith(".xz") else content)
    (modules / "modules.dep").write_text(MODULES_DEP)
    (root / "bin").mkdir()
    (root / "bin/busybox").write_bytes(b"\x7fELF busybox")
    out = initramfs.build(root, tmp_path / "initrd.img")
    archive = gzip.decompress(out.read_bytes())
    listing = subprocess.run(["cpio", "-t", "-v"], input=archive, capture_output=True, check=True).stdout.decode()
    assert " init\n" in listing + "\n" and "modules/ext4.ko" in listing and "bin/busybox" in listing
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run(["cpio", "-i", "-d", "--quiet"], input=archive, cwd=unpacked, check=True)
    assert (unpacked / "modules/ext4.ko").read_bytes() == b"module ext4.ko.xz"  # decompressed for busybox insmod
    loads = (unpacked / "modules.load").read_text().split()
    assert loads.index("jbd2.ko") < loads.index("ext4.ko") and loads[-1] == "ext4.ko"
    assert (unpacked / "init").stat().st_mode & 0o111 and (unpacked / "init").read_text().startswith("#!/bin/busybox")


def test_a_root_with_two_kernels_is_refused(tmp_path: Path) -> None:
    for version in ("6.1.0-1-arm64", "6.1.0-2-arm64"):
        (tmp_path / "lib/modules" / version).mkdir(parents=True)
        (tmp_path / "lib/modules" / version / "modules.dep").write_text("")
    with pytest.raises(BuildError, match="expected one kernel"):
        initramfs.kernel_version(tmp_path)


def test_apt_numpy_in_the_base_keeps_numpy_out_of_the_venv(tmp_path: Path) -> None:
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "usr/bin/python3").symlink_to("python3.11")
    assert target_python(tmp_path) == TargetPython(3, 11, None)
    (tmp_path / "usr/lib/python3/dist-packages/numpy-1.24.2.egg-info").mkdir(parents=True)
    target = target_python(tmp_path)
    assert target.system_numpy == "1.24.2" and target.tag == "cp311"
    wheels = [Path("numpy-1.24.2-cp311-cp311-manylinux2014_aarch64.whl"), Path("scipy-1.11.4-cp311.whl")]
    assert venv.wheels_to_install(wheels, target) == wheels[1:]
    assert venv.wheels_to_install(wheels, TargetPython(3, 11, None)) == wheels


def test_the_service_user_is_declared_with_its_hardware_groups() -> None:
    lines = sysusers_conf(("audio", "spi")).splitlines()
    assert lines[0].startswith("u edgewatch - ") and lines[0].endswith("/var/lib/edgewatch /usr/sbin/nologin")
    assert lines[1:] == ["g audio -", "g i2c -", "g spi -", "m edgewatch audio", "m edgewatch spi"]


def test_image_commands_parse_and_refuse_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["image", "build", "--config", "c.yaml", "--with", "bundles", "--with",
                                      "profiles", "--out", "x.img"])
    assert args.with_folder == [Path("bundles"), Path("profiles")] and args.extras is None
    assert main(["image", "build", "--config", str(tmp_path / "missing.yaml"), "--out", "x.img"]) == 2
    assert main(["image", "wheelhouse", "--out", str(tmp_path / "w"), "--python", "three"]) == 2
    assert main(["image", "wheelhouse", "--out", str(tmp_path / "w"), "--extras", "export"]) == 1
    err = capsys.readouterr().err
    assert "no such file" in err and "MAJOR.MINOR" in err and "torch" in err


@pytest.mark.parametrize(("how", "suffix", "unpack"),
                         [("xz", ".xz", ["xz", "-dc"]), ("zstd", ".zst", ["zstd", "-dcq"])])
def test_compressed_image_unpacks_to_the_same_bytes(tmp_path: Path, how: str, suffix: str, unpack: list[str]) -> None:
    from board.disk import compress

    image = tmp_path / "x.img"
    content = bytes(range(256)) * 4096 + b"\0" * (1 << 20)
    image.write_bytes(content)
    out = compress(image, how)
    assert out.name == "x.img" + suffix and not image.exists()
    assert subprocess.run([*unpack, str(out)], capture_output=True, check=True).stdout == content


EXTRAS_CONFIG = """
model: {bundle: bundle}
alerts: {notify: ["json://127.0.0.1:9/hook"]}
assets:
  - id: press-1
    cameras: [{name: top, type: v4l2}]
    sensors: [{name: bearing, type: i2c, chip: tmp117, quantity: temperature, unit: degC}]
"""


def test_image_extras_follow_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from board.host import BuildError
    from board.wheelhouse import extras_for
    from edge.settings import load_config

    config_path = tmp_path / "config.yaml"
    config_path.write_text(EXTRAS_CONFIG)
    config = load_config(config_path)
    assert extras_for(config, None) == "cloud,i2c,mqtt,notify,video"  # the defaults and what the config uses
    assert extras_for(config, "i2c,notify,video") == "i2c,notify,video"  # --extras overrides
    with pytest.raises(BuildError, match=r"lacks 'i2c', which sensor 'bearing' on asset 'press-1' needs; "
                                         r"'video', which camera 'top' on asset 'press-1' needs: add i2c,video"):
        extras_for(config, "cloud,notify")
    out = tmp_path / "x.img"
    assert main(["image", "build", "--config", str(config_path), "--extras", "", "--out", str(out)]) == 1
    assert "lacks 'i2c'" in capsys.readouterr().err and not out.exists()  # refused before any work
