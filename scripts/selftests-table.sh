#!/usr/bin/env bash
# Markdown table of KVM selftest results for the README, from `softkvm selftests --tsv` files.
# usage: scripts/selftests-table.sh SOFTKVM_TSV [REAL_TSV] [EXPECTATIONS_TSV]
#   SOFTKVM_TSV       a run under softkvm (its first result columns are used)
#   REAL_TSV          a --real-only run on a host's /dev/kvm (optional, "-" to omit)
#   EXPECTATIONS_TSV  tests/selftests-expected.tsv, for the reason column (optional)
set -euo pipefail
soft=$1 real=${2:--} exp=${3:--}
awk -F'\t' -v real="$real" -v expf="$exp" '
  BEGIN {
    if (real != "-") while ((getline l < real) > 0) { if (l ~ /^#/) continue; split(l, f, "\t"); r[f[1]] = f[2] " (" f[3] ")" }
    if (expf != "-") while ((getline l < expf) > 0) { if (l ~ /^#/) continue; split(l, f, "\t"); why[f[1]] = f[3] }
    printf "| test | softkvm | %sreason (what softkvm lacks) |\n", real != "-" ? "real KVM | " : ""
    printf "| --- | --- | %s--- |\n", real != "-" ? "--- | " : ""
  }
  /^#/ { next }
  {
    n[$2]++; total++
    rr = (real != "-") ? ((($1 in r) ? r[$1] : "-") " | ") : ""
    printf "| %s | %s (%s) | %s%s |\n", $1, $2, $3, rr, ($2 == "PASS") ? "" : why[$1]
  }
  END { printf "\nsoftkvm: %d tests, %d pass, %d fail, %d skip, %d timeout\n", total, n["PASS"], n["FAIL"], n["SKIP"], n["TIMEOUT"] }
' "$soft"
