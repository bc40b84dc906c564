"""The A/B image's parts on the host: system.conf, the disk layout, the signed bundle, and U-Boot itself
(Debian's qemu_arm64 build under qemu-system-aarch64) running the boot script over that disk: the boot
counter, its reset by what RAUC writes, and the fall-back to the other slot when it runs out."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from board import ab, bundle, rauc, uboot
from board.host import BuildError
from board.qemu import Console
from edge.cli.main import main
from tests.board_ab_support import Pki, make_pki
from tests.board_support import free_port

KERNEL = b"not a kernel: U-Boot refuses it after the slot is chosen and the counter saved"
FOUND = re.compile(r"Found valid RAUC slot (A|B)|No valid RAUC slot found")
SAVED = re.compile(r"bytes written")
UBOOT_TIMEOUT_S = 120.0


def test_system_conf_names_both_slots_and_each_backend() -> None:
    conf = rauc.system_conf()
    assert "bootloader=uboot\n" in conf and "bundle-formats=-plain" in conf
    assert "[slot.rootfs.0]\ndevice=/dev/vda2\ntype=ext4\nbootname=A" in conf
    assert "[slot.rootfs.1]\ndevice=/dev/vda3\ntype=ext4\nbootname=B" in conf
    pi = rauc.system_conf("tryboot", disk="/dev/mmcblk0p")
    assert "bootloader=custom\nbootloader-custom-backend=/usr/lib/edgewatch/rauc/tryboot-backend" in pi
    assert "device=/dev/mmcblk0p2" in pi
    assert "nvbootctrl-backend" in rauc.system_conf("nvbootctrl")
    with pytest.raises(BuildError, match="unknown bootloader 'grub'"):
        rauc.system_conf("grub")


def test_fstab_mounts_the_data_partition_under_every_persistent_folder() -> None:
    table = rauc.fstab()
    assert "LABEL=edgewatch-data\t/data\text4" in table
    for source, target in rauc.PERSISTENT.items():
        assert f"/data/{source}\t{target}\tnone\tbind" in table


def test_configure_refuses_a_root_without_rauc(tmp_path: Path) -> None:
    keyring = tmp_path / "ca.pem"
    keyring.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    with pytest.raises(BuildError, match="needs Debian's rauc package"):
        rauc.configure(tmp_path / "root", keyring, uboot.fw_env_config())
    with pytest.raises(BuildError, match="no such file"):
        rauc.configure(tmp_path / "root", tmp_path / "absent.pem", uboot.fw_env_config())


def test_bundle_arguments_are_refused_before_any_work(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    key.write_text("x", encoding="utf-8")
    with pytest.raises(BuildError, match=r"must end in \.raucb"):
        bundle.write(tmp_path / "a.img", key, key, tmp_path / "x.bin", "1.0")
    with pytest.raises(BuildError, match=r"--cert .*no such file"):
        bundle.write(tmp_path / "a.img", key, tmp_path / "c.pem", tmp_path / "x.raucb", "1.0")
    with pytest.raises(BuildError, match="without white space"):
        bundle.write(tmp_path / "a.img", key, key, tmp_path / "x.raucb", "1.0 beta")
    with pytest.raises(BuildError, match="--compression 'zstd': expected one of gzip, lz4, xz"):
        bundle.write(tmp_path / "a.img", key, key, tmp_path / "x.raucb", "1.0", compression="zstd")


@pytest.mark.parametrize("compression", ["lz4", "xz"])
def test_bundle_is_compressed_as_asked(tmp_path: Path, compression: str) -> None:
    pki = make_pki(tmp_path / "pki")
    tree, root = tmp_path / "tree", tmp_path / "rootfs.ext4"
    tree.mkdir()
    (tree / "noise").write_bytes(os.urandom(65536))  # a squashfs of an empty file system is too small to sign
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(tree), str(root), "8M"], check=True)
    out = bundle.sign(root, pki.key, pki.cert, tmp_path / "update.raucb", "1.0", compression=compression)
    superblock = subprocess.run(["unsquashfs", "-s", str(out)], capture_output=True, text=True, check=True).stdout
    assert f"Compression {compression}" in superblock
    assert not root.exists(), "the root image was moved into the bundle, not copied"


# -- on the host's tools: mkfs, mtools, mkimage, rauc, U-Boot under qemu ---------------------------------


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An A/B disk from a tiny root: a stand-in kernel, an initramfs, a state file on the data side."""
    root = tmp_path_factory.mktemp("root")
    (root / "boot").mkdir()
    (root / "boot/vmlinuz-6.1.0-test-arm64").write_bytes(KERNEL)
    (root / "boot/initrd.img-6.1.0-test-arm64").write_bytes(b"initramfs")
    (root / "var/lib/edgewatch").mkdir(parents=True)
    (root / "var/lib/edgewatch/history.sqlite3").write_bytes(b"kept across updates")
    return ab.make(root, tmp_path_factory.mktemp("disk") / "ab.img")


def partitions(image: Path) -> list[dict[str, Any]]:
    table = json.loads(subprocess.run(["sfdisk", "--json", str(image)], capture_output=True, text=True,
                                      check=True).stdout)
    return list(table["partitiontable"]["partitions"])


def debugfs_cat(image: Path, partition: dict[str, Any], path: str, tmp_path: Path) -> bytes:
    part = tmp_path / "part.ext4"
    subprocess.run(["dd", f"if={image}", f"of={part}", "bs=1M", f"skip={partition['start'] * 512}",
                    f"count={partition['size'] * 512}", "iflag=skip_bytes,count_bytes", "status=none"], check=True)
    return subprocess.run(["debugfs", "-R", f"cat {path}", str(part)], capture_output=True, check=True).stdout


class Env:
    """uboot.env on the boot partition, read and written with libubootenv as RAUC does on the board."""

    def __init__(self, image: Path, tmp_path: Path) -> None:
        self.image, self.local = image, tmp_path / uboot.ENV_FILE
        self.config = tmp_path / "fw_env.config"
        self.config.write_text(uboot.fw_env_config(str(self.local)), encoding="utf-8")

    def _mtools(self, *args: str) -> None:
        subprocess.run(["mcopy", "-o", "-i", f"{self.image}@@1M", *args], check=True, capture_output=True)

    def read(self) -> dict[str, str]:
        self.local.unlink(missing_ok=True)
        self._mtools(f"::{uboot.ENV_FILE}", str(self.local))
        out = subprocess.run(["fw_printenv", "-c", str(self.config)], capture_output=True, text=True, check=True)
        return dict(line.split("=", 1) for line in out.stdout.splitlines())

    def set(self, name: str, value: str) -> None:
        self.read()
        subprocess.run(["fw_setenv", "-c", str(self.config), name, value], check=True, capture_output=True)
        self._mtools(str(self.local), f"::{uboot.ENV_FILE}")


def uboot_picks(image: Path, transcript: Path) -> str:
    """Power on, let U-Boot's boot script choose a slot and save the counter, pull the plug."""
    console = Console(uboot.UBootMachine(image, free_port()), transcript)
    try:
        found = console.wait_for(FOUND, UBOOT_TIMEOUT_S)
        console.wait_for(SAVED, UBOOT_TIMEOUT_S, since=found.end())
    finally:
        console.power_cut()
    return found[1] or "none"


@pytest.mark.board
def test_ab_disk_layout(disk: Path, tmp_path: Path) -> None:
    parts = partitions(disk)
    assert [p["type"] for p in parts] == ["c", "83", "83", "83"]
    assert parts[0].get("bootable") is True
    listing = subprocess.run(["mdir", "-b", "-i", f"{disk}@@1M", "::"], capture_output=True, text=True,
                             check=True).stdout
    assert "boot.scr" in listing and "uboot.env" in listing
    for slot in parts[1:3]:  # both slots hold the kernel at the name the boot script loads
        assert debugfs_cat(disk, slot, "/boot/vmlinuz", tmp_path) == KERNEL
        assert debugfs_cat(disk, slot, "/var/lib/edgewatch/history.sqlite3", tmp_path) == b""
    assert debugfs_cat(disk, parts[3], "/edgewatch/history.sqlite3", tmp_path) == b"kept across updates"
    assert Env(disk, tmp_path).read() == {"BOOT_ORDER": "A B", "BOOT_A_LEFT": "3", "BOOT_B_LEFT": "3"}


@pytest.mark.board
def test_uboot_counts_boots_falls_back_and_obeys_what_rauc_writes(disk: Path, tmp_path: Path) -> None:
    env = Env(disk, tmp_path)
    transcript = tmp_path / "uboot.log"
    picks = [uboot_picks(disk, transcript) for _ in range(3)]  # slot A never confirmed: its three tries go
    assert picks == ["A", "A", "A"] and env.read()["BOOT_A_LEFT"] == "0"
    assert uboot_picks(disk, transcript) == "B"  # the counter ran out: the other slot boots on its own
    assert env.read() == {"BOOT_ORDER": "A B", "BOOT_A_LEFT": "0", "BOOT_B_LEFT": "2"}
    env.set("BOOT_A_LEFT", "3")  # rauc status mark-good on A (the uboot backend's fw_setenv)
    assert uboot_picks(disk, transcript) == "A" and env.read()["BOOT_A_LEFT"] == "2"
    env.set("BOOT_ORDER", "B A")  # rauc install: the new slot first
    assert uboot_picks(disk, transcript) == "B"


@pytest.mark.board
def test_bundle_is_signed_under_the_keyring_and_refused_under_another(disk: Path, tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    out = bundle.write(disk, pki.key, pki.cert, tmp_path / "update.raucb", "1.2.0")
    info = subprocess.run(["rauc", "info", "--output-format=json", f"--keyring={pki.ca_cert}", str(out)],
                          capture_output=True, text=True, check=True)
    described = json.loads(info.stdout)
    assert (described["compatible"], described["version"]) == (rauc.COMPATIBLE, "1.2.0")
    [image] = described["images"]
    assert image["rootfs"]["size"] == partitions(disk)[1]["size"] * 512
    other: Pki = make_pki(tmp_path / "other", name="someone else")
    refused = subprocess.run(["rauc", "info", f"--keyring={other.ca_cert}", str(out)], capture_output=True, text=True)
    assert refused.returncode != 0 and "signature verification failed" in refused.stderr


@pytest.mark.board
def test_bundle_refuses_an_image_that_is_not_ab(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    single = tmp_path / "one.img"
    with single.open("wb") as f:
        f.truncate(4 * 2**20)
    subprocess.run(["sfdisk", "--quiet", str(single)], input="label: dos\nstart=2048, type=83\n", text=True, check=True)
    with pytest.raises(BuildError, match="has 1 partitions, not the 4 of an A/B image"):
        bundle.write(single, pki.key, pki.cert, tmp_path / "x.raucb", "1.0")
    assert not (tmp_path / "x.raucb").exists()


@pytest.mark.parametrize("flags", [["--ab"], ["--keyring", "ca.pem"]])
def test_ab_and_keyring_go_together(tmp_path: Path, flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("assets: []\n", encoding="utf-8")
    code = main(["image", "build", "--config", str(config), "--out", str(tmp_path / "x.img"), *flags])
    assert code == 2 and "--ab and --keyring CA.pem go together" in capsys.readouterr().err
    assert not (tmp_path / "x.img").exists()
