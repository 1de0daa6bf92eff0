#!/bin/sh
# Installs the Debian packages the real node needs (hack/node.py), if any is missing:
# containerd and runc, the CNI plugins, buildah and skopeo for the images, debootstrap
# for the Debian base image, iptables, ipset (kube-router's policy controller), nftables
# (to remove the tables a run created), conntrack (kube-proxy) and iproute2. About 45 s the first time, nothing afterwards.
set -eu

packages="buildah containerd containernetworking-plugins conntrack debootstrap fuse-overlayfs ipset iproute2 iptables nftables runc skopeo uidmap"
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
  echo "the node needs these Debian packages:$missing (run as root to install them)" >&2
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
