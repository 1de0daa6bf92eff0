#!/bin/sh
# Installs the Debian packages the real node needs (hack/node.py), if any is missing:
# containerd and runc, the CNI plugins, buildah and skopeo for the images, debootstrap
# for the Debian base image, iptables, ipset (kube-router's policy controller), nftables
# (to remove the tables a run created), conntrack (kube-proxy) and iproute2. About 45 s the first time, nothing afterwards.
set -eu

exec "$(dirname "$0")/apt-install.sh" "the node" \
  buildah containerd containernetworking-plugins conntrack debootstrap fuse-overlayfs \
  ipset iproute2 iptables nftables runc skopeo uidmap
