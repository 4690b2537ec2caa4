#!/usr/bin/env bash
# Checks the `softkvm selftests` runner itself, without a kernel tree: fake kselftests that
# pass, skip, fail, crash, hang (with a child that must die with them) are run directly
# (--real-only), and the TSV, JUnit XML, timeout, filter and expectations logic are verified.
# With PRELOAD_LIB, the same fakes also run in the default mode, through `softkvm run`.
# usage: runner_test.sh SOFTKVM_BINARY [PRELOAD_LIB]
set -u
softkvm=$1
preload=${2:-}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fails=0
check() { # check DESCRIPTION COMMAND...
  if "${@:2}"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi
}

mkdir -p "$t/kvm/x86_64" "$t/build"
mk() { printf '#!/bin/sh\n%s\n' "$2" > "$t/kvm/$1"; chmod +x "$t/kvm/$1"; }
mk x86_64/pass_test 'echo hello from pass; exit 0'
mk x86_64/skip_test 'echo "1..0 # SKIP no kvm"; exit 4'
mk x86_64/fail_test 'echo "==== Test Assertion Failure ===="; echo "<&>"; exit 254'
mk x86_64/crash_test 'kill -SEGV $$'
mk hang_test "sleep 300 & echo \$! > '$t/child.pid'; wait"
printf '%s\n' x86_64/pass_test x86_64/skip_test x86_64/fail_test x86_64/crash_test hang_test \
  > "$t/list"
run() {
  "$softkvm" selftests --real-only --no-build --build-dir "$t/build" --tests-dir "$t/kvm" \
    --list "$t/list" --timeout 1 --jobs 2 "$@"
}

start=$(date +%s)
run --tsv "$t/out.tsv" --junit "$t/out.xml" > "$t/out.txt" 2>&1
rc=$?
took=$(( $(date +%s) - start ))
cat "$t/out.txt"
row() { grep -P "^$1\t" "$t/out.tsv" | cut -f2-3; }
row_in() { grep -F "$(printf '%s\t' "$2")" "$1" | cut -f2-3; }
check "exit 1 when something fails and no expectations" test $rc -eq 1
check "pass -> PASS 0" test "$(row x86_64/pass_test)" = "$(printf 'PASS\t0')"
check "exit 4 -> SKIP 4" test "$(row x86_64/skip_test)" = "$(printf 'SKIP\t4')"
check "exit 254 -> FAIL 254" test "$(row x86_64/fail_test)" = "$(printf 'FAIL\t254')"
check "SIGSEGV -> FAIL 139" test "$(row x86_64/crash_test)" = "$(printf 'FAIL\t139')"
check "hang -> TIMEOUT 124" test "$(row hang_test)" = "$(printf 'TIMEOUT\t124')"
check "timeout enforced quickly (${took}s)" test "$took" -le 8
child_dead() { # gone, or a zombie waiting for init to reap it
  local pid; pid=$(cat "$t/child.pid")
  for _ in $(seq 20); do
    [ -e /proc/$pid ] || return 0
    [ "$(awk '{print $3}' /proc/$pid/stat 2>/dev/null)" = Z ] && return 0
    sleep 0.1
  done
  return 1
}
check "child of a timed-out test is killed" child_dead
check "progress shows n/N" grep -q '^\[  5/5\]' "$t/out.txt"
check "counts line" grep -q 'real   : 5 tests, 1 pass, 2 fail, 1 skip, 1 timeout' "$t/out.txt"
check "junit counts" grep -q 'tests="5" failures="3" errors="0" skipped="1"' "$t/out.xml"
check "junit escapes the log" grep -q '&lt;&amp;&gt;' "$t/out.xml"
check "junit carries the log" grep -q 'hello from pass' "$t/out.xml"
if command -v python3 >/dev/null; then
  check "junit is well-formed XML" python3 -c "import sys,xml.etree.ElementTree as E; E.parse(sys.argv[1])" "$t/out.xml"
fi

run --filter 'pass|skip' --tsv "$t/f.tsv" > /dev/null 2>&1
check "exit 0 when all pass or skip" test $? -eq 0
check "--filter keeps 2 tests" test "$(grep -vc '^#' "$t/f.tsv")" -eq 2

# Expectations: a test expected to PASS that does not is a regression (exit 1); one doing
# better than expected is announced; malformed lines are errors.
printf '# comment\nx86_64/pass_test\tPASS\t\nx86_64/fail_test\tFAIL\tlacks X\n' > "$t/exp.tsv"
run --expect "$t/exp.tsv" --filter 'pass|fail' > "$t/e1.txt" 2>&1
check "--expect met: exit 0" test $? -eq 0
printf 'x86_64/pass_test\tFAIL\tlacks Y\nx86_64/fail_test\tPASS\t\n' > "$t/exp.tsv"
run --expect "$t/exp.tsv" --filter 'pass|fail' > "$t/e2.txt" 2>&1
check "--expect regression: exit 1" test $? -eq 1
check "regression named" grep -q 'REGRESSION  x86_64/fail_test' "$t/e2.txt"
check "better than expected announced" grep -q 'BETTER THAN EXPECTED.*pass_test' "$t/e2.txt"
printf 'x86_64/pass_test\tPASS\t\n' > "$t/exp.tsv"
run --expect "$t/exp.tsv" --filter 'pass|skip' > "$t/e3.txt" 2>&1
check "unlisted test reported" grep -q 'no expectation for x86_64/skip_test' "$t/e3.txt"
printf 'x86_64/pass_test\tPASS\t\nx86_64/fail_test\tFLAKY\ttiming\n' > "$t/exp.tsv"
run --expect "$t/exp.tsv" --filter 'pass|fail' > "$t/e4.txt" 2>&1
check "FLAKY is shown, not judged" test $? -eq 0
check "FLAKY is shown" grep -q 'flaky .*fail_test.*got FAIL' "$t/e4.txt"
# --update-expect rewrites results, keeps reasons/comments/FLAKY, appends missing tests.
printf '# head\nx86_64/pass_test\tFAIL\tlacks Y\nx86_64/fail_test\tPASS\t\nx86_64/crash_test\tFLAKY\tload\n' > "$t/exp.tsv"
run --expect "$t/exp.tsv" --update-expect --filter 'pass|fail|crash|skip' > /dev/null 2>&1
check "--update-expect exits 0" test $? -eq 0
printf '# head\nx86_64/pass_test\tPASS\t\nx86_64/fail_test\tFAIL\tTODO: why\nx86_64/crash_test\tFLAKY\tload\nx86_64/skip_test\tSKIP\tTODO: why\n' > "$t/want.tsv"
check "--update-expect result" cmp -s "$t/exp.tsv" "$t/want.tsv"
run --expect "$t/exp.tsv" --filter 'pass|fail|crash|skip' > /dev/null 2>&1
check "updated file is met" test $? -eq 0
printf 'x86_64/pass_test\tGREAT\t\n' > "$t/exp.tsv"
run --expect "$t/exp.tsv" --filter pass > /dev/null 2>&1
check "malformed expectation line fails" test $? -eq 1

# Flavour rows: NAME@intel in the expectations runs a copy of NAME with SOFTKVM_VENDOR=intel
# (the fake passes only there), NAME itself still runs with the default flavour.
mk x86_64/vendor_test 'echo "vendor=${SOFTKVM_VENDOR:-default}"; [ "${SOFTKVM_VENDOR:-}" = intel ] || exit 4'
printf 'x86_64/vendor_test\n' > "$t/vlist"
printf 'x86_64/vendor_test\tSKIP\tdefault flavour\nx86_64/vendor_test@intel\tPASS\t\nx86_64/pass_test@amd\tPASS\t\n' > "$t/vexp.tsv"
SOFTKVM_VENDOR= "$softkvm" selftests --real-only --no-build --build-dir "$t/build" --tests-dir "$t/kvm" \
  --list "$t/vlist" --timeout 5 --expect "$t/vexp.tsv" --tsv "$t/v.tsv" > "$t/v.txt" 2>&1
check "@intel row: expectations met (exit 0)" test $? -eq 0
check "@intel copy ran with SOFTKVM_VENDOR=intel" test "$(row_in "$t/v.tsv" 'x86_64/vendor_test@intel')" = "$(printf 'PASS\t0')"
check "the test itself ran with the default flavour" test "$(row_in "$t/v.tsv" x86_64/vendor_test)" = "$(printf 'SKIP\t4')"
check "a flavour row of an unlisted test adds nothing" test "$(grep -vc '^#' "$t/v.tsv")" -eq 2
check "@intel log next to the others" grep -q 'vendor=intel' "$t/build/logs/real/x86_64_vendor_test@intel.log"

# SIGTERM to the runner (as a CI cancel or Ctrl-C would do) kills the running tests too.
rm -f "$t/child.pid"
"$softkvm" selftests --real-only --no-build --build-dir "$t/build" --tests-dir "$t/kvm" \
  --list "$t/list" --filter hang_test --timeout 100 > /dev/null 2>&1 &
runner=$!
for _ in $(seq 50); do [ -s "$t/child.pid" ] && break; sleep 0.1; done
kill -TERM $runner
wait $runner
check "SIGTERM: runner exits 130" test $? -eq 130
check "SIGTERM: the test's child is killed" child_dead

# Two runs sharing a build dir are serialised.
run --filter hang_test --timeout 2 > /dev/null 2>&1 &
first=$!
sleep 0.5
run --filter pass > "$t/second.txt" 2>&1
check "second run on the same build dir waits" grep -q 'waiting for another run' "$t/second.txt"
wait $first

# The default mode runs each test through `softkvm run --` (the fakes do not use /dev/kvm,
# so they must behave exactly as when run directly).
if [ -n "$preload" ]; then
  SOFTKVM_PRELOAD=$preload "$softkvm" selftests --no-build --build-dir "$t/build" \
    --tests-dir "$t/kvm" --list "$t/list" --timeout 1 --jobs 2 --tsv "$t/s.tsv" > "$t/s.txt" 2>&1
  # Results, not exit codes: in the ASan build the preloaded sanitizer runtime turns the
  # crash test's SIGSEGV into its own exit 1.
  check "softkvm mode: same results as direct" \
    cmp -s <(cut -f1-2 "$t/out.tsv" | sed 1d) <(cut -f1-2 "$t/s.tsv" | sed 1d)
  check "softkvm mode: column named softkvm" grep -q '^softkvm: 5 tests' "$t/s.txt"
  SOFTKVM_PRELOAD=/nonexistent "$softkvm" selftests --no-build --build-dir "$t/build" \
    --tests-dir "$t/kvm" --list "$t/list" > "$t/s2.txt" 2>&1
  check "softkvm mode: unusable softkvm run is an error (2)" test $? -eq 2
fi

rm -rf "$t/build/logs"
check "bad --filter is a usage error" bash -c "'$softkvm' selftests --real-only --no-build --build-dir '$t/build' --tests-dir '$t/kvm' --list '$t/list' --filter '(' >/dev/null 2>&1; test \$? -eq 2"
check "bad --timeout is a usage error" bash -c "'$softkvm' selftests --timeout 0 >/dev/null 2>&1; test \$? -eq 2"
echo "$fails failure(s)"
exit $((fails > 0))
