"""``--base``: edgewatch injected into a user's partitioned arm64 image, its boot partition untouched.

The base here is built like a Raspberry Pi OS image (MBR: a FAT boot partition with the files
Raspberry Pi Imager customises, then an ext4 root) from Debian's arm64 packages.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from board import base, rootfs
from board.disk import MIB
from edge.cli.main import main
from tests.board_support import REPO_ROOT, free_port, guest_config

pytestmark = pytest.mark.board

BOOT_MIB = 64
IMAGER_FILES = {"cmdline.txt": "console=serial0,115200 root=PARTUUID=abcd-02 rootfstype=ext4 fsck.repair=yes\n",
                "firstrun.sh": "#!/bin/bash\n# written by Raspberry Pi Imager: host name, user, Wi-Fi, SSH\n"}


def make_base(work: Path) -> Path:
    boot, root_fs, image = work / "boot.part", work / "root.part", work / "base.img"
    subprocess.run(["mkfs.vfat", "-C", "-n", "bootfs", str(boot), str(BOOT_MIB * 1024)], check=True,
                   capture_output=True)
    for name, text in IMAGER_FILES.items():
        (work / name).write_text(text)
        subprocess.run(["mcopy", "-i", str(boot), str(work / name), f"::{name}"], check=True)
    root = rootfs.extract(rootfs.cached_tarball(), work / "baseroot")
    subprocess.run(["mkfs.ext4", "-q", "-L", "rootfs", "-d", str(root), str(root_fs), "900M"], check=True)
    subprocess.run(["rm", "-rf", str(root)], check=True)
    with image.open("wb") as disk:
        disk.truncate(4 * MIB + BOOT_MIB * MIB + root_fs.stat().st_size)
    table = (f"label: dos\nstart=8192, size={BOOT_MIB * 2048}, type=c\n"
             f"start={8192 + BOOT_MIB * 2048}, type=83\n")
    subprocess.run(["sfdisk", "--quiet", str(image)], input=table, text=True, check=True)
    for part, sector in ((boot, 8192), (root_fs, 8192 + BOOT_MIB * 2048)):
        subprocess.run(["dd", f"if={part}", f"of={image}", "bs=4M", f"seek={sector * 512}", "oflag=seek_bytes",
                        "conv=notrunc,sparse", "status=none"], check=True)
        part.unlink()
    return image


def boot_partition_bytes(image: Path) -> bytes:
    with image.open("rb") as disk:
        disk.seek(8192 * 512)
        return disk.read(BOOT_MIB * MIB)


def test_edgewatch_goes_into_the_base_root_and_the_boot_partition_stays(tmp_path: Path) -> None:
    base_image = make_base(tmp_path)
    before, _ = base.root_partition(base_image)
    boot_before = boot_partition_bytes(base_image)
    config = guest_config(tmp_path / "config.yaml", free_port())
    out = tmp_path / "site.img"
    assert main(["image", "build", "--base", str(base_image), "--config", str(config),
                 "--with", str(REPO_ROOT / "examples/demo"), "--extras", "", "--out", str(out)]) == 0
    after, last = base.root_partition(out)
    assert (after.number, after.start, last) == (2, before.start, True) and after.size > before.size
    assert boot_partition_bytes(out) == boot_before  # Imager's files and the firmware are untouched
    print(f"\nbase {base_image.stat().st_size / MIB:.0f} MiB -> {out.stat().st_size / MIB:.0f} MiB with edgewatch")
    with base.mounted_root(out, after) as root:
        assert (root / "opt/edgewatch/bin/edgewatch").is_file()
        assert "include-system-site-packages = true" in (root / "opt/edgewatch/pyvenv.cfg").read_text()
        assert (root / "etc/systemd/system/multi-user.target.wants/edgewatch.service").is_symlink()
        assert any(line.startswith("edgewatch:") for line in (root / "etc/passwd").read_text().splitlines())
        assert (root / "etc/edgewatch/demo/bundle/manifest.json").is_file()
        house = root / "var/cache/edgewatch/wheelhouse"
        assert (house / "constraints.txt").is_file() and len(list(house.glob("edgewatch-*.whl"))) == 1
    with base.loop_device(out, after) as device:
        check = subprocess.run(["e2fsck", "-f", "-n", device], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_base_without_a_linux_partition_is_refused(tmp_path: Path) -> None:
    image = tmp_path / "fat-only.img"
    with image.open("wb") as disk:
        disk.truncate(16 * MIB)
    subprocess.run(["sfdisk", "--quiet", str(image)], input="label: dos\nstart=2048, type=c\n", text=True, check=True)
    config = guest_config(tmp_path / "config.yaml", free_port())
    assert main(["image", "build", "--base", str(image), "--config", str(config), "--out",
                 str(tmp_path / "out.img")]) == 1
    assert not (tmp_path / "out.img").exists()


def test_the_wheelhouse_pins_numpy_to_the_base_apt_numpy(tmp_path: Path) -> None:
    out = tmp_path / "wheelhouse"
    assert main(["image", "wheelhouse", "--out", str(out), "--python", "3.11", "--numpy", "1.24.2",
                 "--extras", ""]) == 0
    wheels = sorted(p.name for p in out.glob("*.whl"))
    assert [w for w in wheels if w.startswith("numpy-")] == [
        next(w for w in wheels if w.startswith("numpy-1.24.2-cp311-cp311-") and "aarch64" in w)]
    assert all(w.endswith("-none-any.whl") or "aarch64" in w for w in wheels), wheels
    assert (out / "constraints.txt").read_text() == "numpy==1.24.2\n"
