# U-Boot boot script for the A/B image under qemu (qemu_arm64), after RAUC's U-Boot integration.
# BOOT_ORDER, BOOT_A_LEFT and BOOT_B_LEFT live in uboot.env on the boot partition (FAT), which
# RAUC on Linux reads and writes with fw_printenv/fw_setenv (/etc/fw_env.config). Each boot takes
# one try from the first slot in BOOT_ORDER that has tries left; `rauc status mark-good` (the
# health gate) gives it its tries back. A slot whose tries run out is skipped: the other one boots.
setenv envaddr ${pxefile_addr_r}
if load virtio 0:1 ${envaddr} uboot.env; then
  env import -c ${envaddr} ${filesize} BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT
fi
test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"
test -n "${BOOT_A_LEFT}" || setenv BOOT_A_LEFT 3
test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT 3
setenv bootpart
setenv raucslot
for BOOT_SLOT in "${BOOT_ORDER}"; do
  if test "x${bootpart}" != "x"; then
    # a slot is chosen: skip the rest
  elif test "x${BOOT_SLOT}" = "xA"; then
    if test ${BOOT_A_LEFT} -gt 0; then
      setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
      echo "Found valid RAUC slot A"
      setenv bootpart 2
      setenv raucslot A
    fi
  elif test "x${BOOT_SLOT}" = "xB"; then
    if test ${BOOT_B_LEFT} -gt 0; then
      setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
      echo "Found valid RAUC slot B"
      setenv bootpart 3
      setenv raucslot B
    fi
  fi
done
if test -z "${bootpart}"; then
  echo "No valid RAUC slot found. Resetting tries to 3"
  setenv BOOT_A_LEFT 3
  setenv BOOT_B_LEFT 3
fi
env export -c -s @ENV_SIZE@ ${envaddr} BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT
fatwrite virtio 0:1 ${envaddr} uboot.env @ENV_SIZE@
if test -z "${bootpart}"; then
  reset
fi
load virtio 0:${bootpart} ${kernel_addr_r} /boot/vmlinuz
load virtio 0:${bootpart} ${ramdisk_addr_r} /boot/initrd.img
setenv bootargs "root=/dev/vda${bootpart} ro console=ttyAMA0 panic=5 rauc.slot=${raucslot}"
booti ${kernel_addr_r} ${ramdisk_addr_r}:${filesize} ${fdtcontroladdr}
