#!/usr/bin/env bash
# Boot Debian's cloud kernel under an unmodified kvmtool (`lkvm run`) served by softkvm, with
# a busybox initramfs whose /init prints a marker and reboots (kvmtool ends its session on the
# guest's reboot; the cloud kernel has no MP-table parser and kvmtool gives it no ACPI, so
# Linux brings up one CPU whatever -c says).
#   boot_kvmtool.sh SOFTKVM LKVM ASSETS_DIR
# Debian has no kvmtool package: build lkvm from https://github.com/kvmtool/kvmtool (make lkvm)
# and configure with -DSOFTKVM_LKVM=/path/to/lkvm to make this a ctest test (label vmm).
# Fails unless the marker is on the console, lkvm ended its session normally, and
# SOFTKVM_REPORT shows softkvm (not the host's /dev/kvm) created the VM and its vCPU.
set -uo pipefail
softkvm=$1 lkvm=$2 assets=$3
marker=SOFTKVM-BOOT-MARKER-OK
fail() { echo "FAIL: $*"; exit 1; }
[ -x "$lkvm" ] || fail "no lkvm at $lkvm"
. "$(dirname "$0")/guest_assets.sh"
guest_assets reboot
start=$(date +%s%N)
# lkvm keeps its state under $HOME/.lkvm
HOME=$work SOFTKVM_REPORT=$work/report.txt timeout 600 "$softkvm" run -- "$lkvm" run \
  -k "$kernel" -i "$work/initrd.gz" -m 256 -c 1 -p "panic=-1" < /dev/null > "$work/console.log" 2>&1
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "kvmtool softkvm: exit $rc after $((ms / 1000)).$(((ms % 1000) / 100)) s"
bad=0
grep -aq "$marker" "$work/console.log" || { echo "FAIL: marker missing"; bad=1; }
[ "$rc" -eq 0 ] || { echo "FAIL: lkvm exit status $rc (124: timed out)"; bad=1; }
grep -aq "KVM session ended normally" "$work/console.log" || { echo "FAIL: session did not end normally"; bad=1; }
grep -q "KVM_CREATE_VM served" "$work/report.txt" 2>/dev/null || { echo "FAIL: the VM was not created by softkvm"; bad=1; }
grep -q "KVM_CREATE_VCPU 0 served" "$work/report.txt" 2>/dev/null || { echo "FAIL: vCPU 0 not served by softkvm"; bad=1; }
if [ $bad -ne 0 ]; then
  echo "--- console (last 25 lines)"; tail -n 25 "$work/console.log"
  echo "--- softkvm report"; cat "$work/report.txt" 2>/dev/null
  exit 1
fi
echo "ok: marker seen, session ended normally, served by softkvm"
