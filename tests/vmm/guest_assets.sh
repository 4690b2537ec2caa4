# Sourced by the vmm boot scripts: unpacks Debian's cloud kernel from $assets and builds a
# busybox initramfs whose /init prints $marker and then runs `busybox $1` (poweroff -f for
# QEMU's ACPI power-off, reboot -f for kvmtool, which ends its session on a reset).
# Sets $work (removed on exit), $kernel and $work/initrd.gz; needs fail() and $assets.
guest_assets() {
  local last=$1 deb
  deb=$(ls "$assets"/linux-image-*-cloud-amd64_*.deb 2>/dev/null | head -1)
  [ -n "$deb" ] || fail "no kernel package in $assets (scripts/bootstrap.sh test downloads it)"
  [ -x /bin/busybox ] || fail "/bin/busybox missing (apt-get install busybox-static)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  dpkg-deb -x "$deb" "$work/k" || fail "cannot unpack $deb"
  kernel=$(ls "$work"/k/boot/vmlinuz-* | head -1)
  mkdir -p "$work/ird/bin"
  cp /bin/busybox "$work/ird/bin/"
  printf '#!/bin/busybox sh\n/bin/busybox echo %s\n/bin/busybox %s -f\n' "$marker" "$last" > "$work/ird/init"
  chmod +x "$work/ird/init"
  (cd "$work/ird" && find . | cpio -o -H newc 2>/dev/null | gzip > "$work/initrd.gz")
}
