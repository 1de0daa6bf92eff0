#!/bin/sh
# Installs the Debian packages the VM suite needs (tests/vm), if any is missing:
# qemu (software emulation; qemu-utils for qemu-img), debootstrap for the guest's
# Debian, e2fsprogs (mkfs.ext4 -d builds the guest's disk from a folder, unmounted),
# xorriso (xorrisofs: the Secret disk, built as KubeVirt's virt-launcher builds it) and
# socat (qemu's guestfwd hands each guest connection to it). About a minute the first
# time, nothing afterwards.
set -eu

packages="debootstrap e2fsprogs qemu-system-x86 qemu-utils socat xorriso"
missing=""
for p in $packages; do
  if ! dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing="$missing $p"
  fi
done
if [ -z "$missing" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "the VM suite needs these Debian packages:$missing (run as root to install them)" >&2
  exit 1
fi
echo "installing$missing"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086 # $missing is a list of package names
if ! apt-get install -y -q --no-install-recommends $missing >/dev/null; then
  apt-get update -q >/dev/null
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing >/dev/null
fi
