#!/usr/bin/env bash
# boot-bench: seconds from QEMU start to the guest's ACPI power-off (its /init prints the
# marker and powers off at once) for the same Debian cloud kernel + busybox initramfs,
# under softkvm (`softkvm run -- qemu -accel kvm`) and under QEMU's own TCG, side by side in
# one run. Goal: softkvm faster than TCG.
#   bench/boot_bench.sh [BUILD_DIR] [MACHINE] [SMP]
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build} machine=${2:-pc} smp=${3:-1}
for mode in softkvm tcg; do
  out=$("$here/tests/vmm/boot_qemu.sh" "$build/tools/softkvm" "$build/vmm-assets" "$machine" "$smp" "$mode")
  rc=$?
  line=$(grep "^qemu $mode" <<< "$out")
  printf '%-8s %s%s\n' "$mode" "${line#qemu $mode }" "$([ $rc -eq 0 ] || echo ' (FAILED)')"
done
