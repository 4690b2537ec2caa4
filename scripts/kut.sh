#!/usr/bin/env bash
# scripts/kut.sh — run kvm-unit-tests x86 tests on softkvm through Debian's QEMU (not in CI:
# it needs a kvm-unit-tests build, which CI has not). Prints one line per test with the
# PASS/FAIL/SKIP check counts and the test's own SUMMARY, and a total.
#
#   scripts/kut.sh [--real] [--build DIR] [--timeout S] KUT_DIR [TEST...]
#
# KUT_DIR is a built kvm-unit-tests tree (./configure --arch=x86_64 && make). TEST names
# are x86/unittests.cfg section names (default: a fidelity list, below). Per test the
# command is what x86/run builds (QEMU with pc-testdev, isa-debug-exit, pci-testdev,
# -machine accel=kvm) plus the section's smp, qemu_params/extra_params and test_args.
# --real runs the same command on the host's /dev/kvm instead, for comparison.
# Exit status: 0 when every test ran (whatever its result), 2 on usage errors.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
build="$here/build"
real=0
timeout=90
while [ $# -gt 0 ]; do
    case "$1" in
    --real) real=1; shift ;;
    --build) build=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    -h|--help) sed -n 2,14p "$0"; exit 0 ;;
    *) break ;;
    esac
done
[ $# -ge 1 ] || { sed -n 2,14p "$0" >&2; exit 2; }
kut=$1; shift
cfg="$kut/x86/unittests.cfg"
[ -f "$cfg" ] || { echo "kut.sh: no $cfg" >&2; exit 2; }
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(idt_test pcid-enabled pcid-disabled pcid-asymmetric la57 xapic x2apic syscall debug)

# the value of KEY in [SECTION] of unittests.cfg (empty if absent)
cfg_get() {
    awk -v s="[$1]" -v k="$2" '
        $0 == s { in_s = 1; next }
        /^\[/ { in_s = 0 }
        in_s && $0 ~ "^" k "[ \t]*=" { sub("^[^=]*=[ \t]*", ""); gsub(/^"|"$/, ""); print; exit }
    ' "$cfg"
}

qemu=${QEMU:-qemu-system-x86_64}
tp=0; tf=0; ts=0
printf '%-18s %5s %5s %5s  %s\n' test pass fail skip summary
for t in "${tests[@]}"; do
    file=$(cfg_get "$t" file)
    if [ -z "$file" ]; then
        printf '%-18s %5s %5s %5s  %s\n' "$t" - - - "not in unittests.cfg"
        continue
    fi
    smp=$(cfg_get "$t" smp); smp=${smp:-1}
    params=$(cfg_get "$t" qemu_params); [ -n "$params" ] || params=$(cfg_get "$t" extra_params)
    args=$(cfg_get "$t" test_args)
    # shellcheck disable=SC2206
    cmd=("$qemu" --no-reboot -nodefaults -global kvm-pit.lost_tick_policy=discard
         -device pc-testdev -device isa-debug-exit,iobase=0xf4,iosize=0x4 -display none
         -serial stdio -device pci-testdev -machine accel=kvm -kernel "$kut/x86/$file"
         -smp "$smp" $params)
    [ -z "$args" ] || cmd+=(-append "$args")
    log=$(mktemp)
    if [ $real = 1 ]; then
        timeout "$timeout" "${cmd[@]}" >"$log" 2>&1 </dev/null
    else
        timeout "$timeout" "$build/tools/softkvm" run -- "${cmd[@]}" >"$log" 2>&1 </dev/null
    fi
    rc=$?
    p=$(grep -c '^PASS: ' "$log"); f=$(grep -c '^FAIL: ' "$log"); s=$(grep -c '^SKIP: ' "$log")
    sum=$(grep -m1 '^SUMMARY:' "$log" || true)
    # isa-debug-exit: status = code << 1 | 1, so 1 is report(0) = success (run_tests.sh)
    [ -n "$sum" ] || sum="no SUMMARY (exit $rc$( [ $rc = 124 ] && echo ', timeout'; [ $rc = 1 ] && echo ': success'))"
    printf '%-18s %5d %5d %5d  %s\n' "$t" "$p" "$f" "$s" "$sum"
    if [ -n "${KUT_LOG_DIR:-}" ]; then mkdir -p "$KUT_LOG_DIR"; cp "$log" "$KUT_LOG_DIR/$t.log"; fi
    rm -f "$log"
    tp=$((tp + p)); tf=$((tf + f)); ts=$((ts + s))
done
printf '%-18s %5d %5d %5d\n' total "$tp" "$tf" "$ts"
