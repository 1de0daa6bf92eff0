#!/bin/sh
# network ADDRESS/PREFIX: the guest's address on qemu's user-mode network, on its one
# network card (as a cloud-init network config would set it). No default route, no DNS
# server: the guest reaches its own subnet only, where qemu forwards what the test set up.
set -eu
udevadm settle --timeout=120
dev=
for path in /sys/class/net/*; do
  if [ "${path##*/}" != lo ]; then
    dev=${path##*/}
    break
  fi
done
ip link set "$dev" up
ip address add "$1" dev "$dev"
ip -4 address show dev "$dev"
ip route
