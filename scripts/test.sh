#!/usr/bin/env bash
# Install everything the tests need on a fresh machine, then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v mosquitto >/dev/null || [[ -x /usr/sbin/mosquitto ]] || need_apt+=(mosquitto)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
command -v openssl >/dev/null || need_apt+=(openssl)  # a STARTTLS certificate for the SMTP test server
command -v arecord >/dev/null || need_apt+=(alsa-utils)  # the soundcard reader's capture tool
# the board tests: an arm64 root (mmdebstrap under qemu-user), its disk image, and qemu-system to boot it
command -v mmdebstrap >/dev/null || need_apt+=(mmdebstrap arch-test)
command -v qemu-aarch64-static >/dev/null || need_apt+=(qemu-user-static binfmt-support)
command -v qemu-system-aarch64 >/dev/null || need_apt+=(qemu-system-arm)
[[ -e /usr/lib/ipxe/qemu/efi-virtio.rom ]] || need_apt+=(ipxe-qemu)  # the virtio NIC's option ROM
# i2c-stub for the boot test, built for the image's kernel (Debian's arm64 kernel lacks it)
command -v aarch64-linux-gnu-gcc-12 >/dev/null || need_apt+=(gcc-aarch64-linux-gnu)
command -v make >/dev/null || need_apt+=(make)
command -v sfdisk >/dev/null || need_apt+=(fdisk)
command -v mkfs.ext4 >/dev/null || need_apt+=(e2fsprogs)
command -v zstd >/dev/null || need_apt+=(zstd)
command -v xz >/dev/null || need_apt+=(xz-utils)
command -v cpio >/dev/null || need_apt+=(cpio)  # the initramfs test lists what it built
command -v mkfs.vfat >/dev/null || need_apt+=(dosfstools mtools)  # the --base test builds a Pi-like image
# the A/B image: RAUC (bundles), U-Boot for qemu and its tools, fw_printenv, squashfs for verity bundles
command -v rauc >/dev/null || need_apt+=(rauc)
[[ -e /usr/lib/u-boot/qemu_arm64/u-boot.bin ]] || need_apt+=(u-boot-qemu)
command -v mkimage >/dev/null || need_apt+=(u-boot-tools)
command -v fw_printenv >/dev/null || need_apt+=(libubootenv-tool)
command -v mksquashfs >/dev/null || need_apt+=(squashfs-tools)
command -v promtool >/dev/null || need_apt+=(prometheus)  # promtool: the fleet alert rules' unit tests
# a real RTSP server for the network camera tests: GStreamer's, driven from Debian's python3
/usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" 2>/dev/null ||
  need_apt+=(python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
             gstreamer1.0-plugins-ugly)
if ((${#need_apt[@]})); then
  echo "installing system packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# arm64 programs run through binfmt_misc (mmdebstrap's package scripts, the arm64 tests)
[[ -e /proc/sys/fs/binfmt_misc/status ]] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable qemu-aarch64

scripts/setup-env.sh "export,test,all,demo,board"
.venv/bin/ruff check edge export bench board tests benchmarks
.venv/bin/python -m mypy  # files and strictness per package: [tool.mypy] in pyproject.toml
# pytest exits 5 when it collects no test: treat that as the failure it is.
exec .venv/bin/python -m pytest -q "$@"
