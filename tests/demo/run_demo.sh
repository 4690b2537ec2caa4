#!/usr/bin/env bash
# The README's main job as a test: kvm-msr-demo (an ordinary KVM program) under
# `softkvm run` must print exactly the transcript recorded on real KVM, and, when
# this machine has a working /dev/kvm, exactly what that real KVM prints now.
set -u
softkvm=$1 demo=$2 expected=$3
out=$(mktemp); trap 'rm -f "$out" "$out.real"' EXIT
"$softkvm" run -- "$demo" > "$out" 2>&1
rc=$?
if ! diff -u "$expected" "$out"; then
    echo "FAIL: softkvm transcript differs from the recorded real-KVM transcript (rc=$rc)"
    exit 1
fi
[ $rc -eq 0 ] || { echo "FAIL: demo exited $rc under softkvm"; exit 1; }
if [ -r /dev/kvm ] && [ -w /dev/kvm ] && "$demo" > "$out.real" 2>&1; then
    diff -u "$out.real" "$out" || { echo "FAIL: softkvm differs from live real KVM"; exit 1; }
    echo "softkvm matches live real KVM"
fi
echo "kvm-msr-demo transcript matches ($(wc -l < "$out") lines)"
