#!/bin/sh
# Installs the Debian packages the VM suite needs (tests/vm), if any is missing:
# qemu (software emulation; qemu-utils for qemu-img), debootstrap for the guest's
# Debian, e2fsprogs (mkfs.ext4 -d builds the guest's disk from a folder, unmounted),
# xorriso (xorrisofs: the Secret disk, built as KubeVirt's virt-launcher builds it) and
# socat (qemu's guestfwd hands each guest connection to it). About a minute the first
# time, nothing afterwards.
set -eu

exec "$(dirname "$0")/apt-install.sh" "the VM suite" \
  debootstrap e2fsprogs qemu-system-x86 qemu-utils socat xorriso
