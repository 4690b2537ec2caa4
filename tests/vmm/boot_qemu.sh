#!/usr/bin/env bash
# Boot Debian's cloud kernel under unmodified Debian QEMU (-accel kvm) served by softkvm, with
# a busybox initramfs whose /init prints a marker and powers off (issue 10).
#   boot_qemu.sh SOFTKVM ASSETS_DIR MACHINE SMP [tcg]
# With "tcg" the same boot runs on QEMU's own TCG instead (bench/boot_bench.sh compares).
# ASSETS_DIR holds linux-image-*-cloud-amd64_*.deb (scripts/bootstrap.sh test downloads it).
# Fails unless: the marker is on the serial console, QEMU exited 0 after the guest's ACPI
# power-off, no KVM internal error was reported, Linux brought up SMP CPUs, and
# SOFTKVM_REPORT shows that softkvm (not the host's /dev/kvm) created the VM and every vCPU.
set -uo pipefail
softkvm=$1 assets=$2 machine=$3 smp=$4 mode=${5:-softkvm}
marker=SOFTKVM-BOOT-MARKER-OK
fail() { echo "FAIL: $*"; exit 1; }

command -v qemu-system-x86_64 >/dev/null || fail "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"
. "$(dirname "$0")/guest_assets.sh"
guest_assets poweroff

if [ "$mode" = tcg ]; then
  launch=(qemu-system-x86_64 -accel tcg)
else
  launch=("$softkvm" run -- qemu-system-x86_64 -accel kvm)
fi
start=$(date +%s%N)
SOFTKVM_REPORT=$work/report.txt timeout 600 "${launch[@]}" \
  -nographic -monitor none -no-reboot \
  -machine "$machine" -smp "$smp" -m 256 -kernel "$kernel" -initrd "$work/initrd.gz" \
  -append "console=ttyS0 panic=-1" < /dev/null > "$work/serial.log" 2> "$work/qemu.log"
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
secs=$(printf '%d.%01d' $((ms / 1000)) $(((ms % 1000) / 100)))
echo "qemu $mode -machine $machine -smp $smp: exit $rc after $secs s"

show() {
  echo "--- serial (last 25 lines)"; tail -n 25 "$work/serial.log" 2>/dev/null
  echo "--- qemu"; grep -v "host doesn't support requested feature" "$work/qemu.log" | tail -n 25
  echo "--- softkvm report"; cat "$work/report.txt" 2>/dev/null
}
bad=0
grep -aq "$marker" "$work/serial.log" 2>/dev/null || { echo "FAIL: marker missing"; bad=1; }
[ "$rc" -eq 0 ] || { echo "FAIL: QEMU exit status $rc (124: timed out)"; bad=1; }
if grep -aqiE "KVM internal error|emulation failure" "$work/qemu.log"; then
  echo "FAIL: KVM internal error"; bad=1
fi
grep -aq "smp: Brought up 1 node, $smp CPU" "$work/serial.log" 2>/dev/null ||
  { echo "FAIL: Linux did not bring up $smp CPU(s)"; bad=1; }
if [ "$mode" != tcg ]; then
  grep -q "KVM_CREATE_VM served" "$work/report.txt" 2>/dev/null ||
    { echo "FAIL: the VM was not created by softkvm"; bad=1; }
  n=$(grep -c "KVM_CREATE_VCPU .* served" "$work/report.txt" 2>/dev/null)
  [ "${n:-0}" -eq "$smp" ] || { echo "FAIL: softkvm served ${n:-0} vCPUs, want $smp"; bad=1; }
fi
[ $bad -eq 0 ] || { show; exit 1; }
echo "ok: marker seen, $smp CPU(s) up, ACPI power-off, served by $mode"
