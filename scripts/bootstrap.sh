#!/usr/bin/env bash
# One entry point for the two README commands.
#   scripts/bootstrap.sh run   install what is needed, build, run the main job
#   scripts/bootstrap.sh test  install what is needed, build (plain + ASan/UBSan), run all tests
# Idempotent: packages already present are not reinstalled, builds are incremental.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
jobs=$(nproc 2>/dev/null || echo 2)

pkgs=(build-essential cmake pkg-config libcapstone-dev libunicorn-dev check libfuse3-dev
      libseccomp-dev xz-utils linux-source-6.12
      qemu-system-x86 busybox-static cpio) # the last three: the real-VMM boot tests (vmm)
install_deps() {
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# Debian's cloud kernel package for the vmm tests (tests/vmm), into the plain build dir.
vmm_assets() {
  local dir=build/vmm-assets
  mkdir -p "$dir"
  ls "$dir"/linux-image-*-cloud-amd64_*.deb >/dev/null 2>&1 && return 0
  local pkg
  pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  [ -n "$pkg" ] || { echo "bootstrap: cannot resolve linux-image-cloud-amd64" >&2; return 1; }
  echo "bootstrap: downloading $pkg"
  (cd "$dir" && apt-get download -qq "$pkg" 2>&1 | grep -v "unsandboxed" || true)
  ls "$dir"/linux-image-*-cloud-amd64_*.deb >/dev/null 2>&1
}

build() { # build DIR [cmake args...]
  local dir=$1; shift
  cmake -S . -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
}

case "${1:-}" in
  run)
    install_deps
    build build
    ./build/tools/softkvm --version
    # The main job: an ordinary KVM program, served by softkvm (not the host's /dev/kvm).
    ./build/tools/softkvm run -- ./build/tools/kvm-msr-demo
    ;;
  test)
    install_deps
    build build
    vmm_assets
    build build-san -DSOFTKVM_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
    # every standard build type must build (-O3 finds warnings the others do not);
    # `build` is RelWithDebInfo and build-san Debug, so Release is built here, not run
    build build-release -DCMAKE_BUILD_TYPE=Release
    rc=0
    echo "== tests (release build) =="
    (cd build && ctest --output-on-failure -j"$jobs") || rc=1
    echo "== tests (ASan+UBSan build) =="
    (cd build-san && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
       ctest --output-on-failure -j"$jobs") || rc=1
    exit $rc
    ;;
  *)
    echo "usage: $0 run|test" >&2
    exit 2
    ;;
esac
