#!/bin/sh
# The launcher pod's command (tests/vm/pod.py): what KubeVirt v1.7.0's virt-launcher does
# with a `secret` volume, then the VM. The kubelet mounted the user's credentials Secret
# at /var/run/kubevirt-private/secret/<volume> (its own layout: `..data`, a dated folder,
# a symlink per key); virt-launcher lists that folder, every entry, and turns it into an
# ISO with exactly this xorrisofs command (pkg/config: defaultCreateIsoImage), the
# volume's `volumeLabel` as the ISO's label. Then qemu runs: the rest of the arguments.
#
#   launcher.sh VOLUME LABEL QEMU-ARGV...
set -eu
volume=$1
label=$2
shift 2
src=/var/run/kubevirt-private/secret/$volume
iso=/var/run/kubevirt-private/secret-disks/$volume.iso
mkdir -p "$(dirname "$iso")"
# os.ReadDir's entries, sorted by name, each as NAME=PATH (the Secret's keys are plain
# words; the kubelet's own entries start with "..").
entries=$(cd "$src" && LC_ALL=C ls -A)
set -f
files=""
for name in $entries; do
  files="$files $name=$src/$name"
done
# shellcheck disable=SC2086 # one word per entry
xorrisofs -output "$iso.staging" -follow-links -volid "${label:-cfgdata}" -joliet -rock \
  -graft-points -partition_cyl_align on $files
set +f
mv "$iso.staging" "$iso"
echo "secret disk $iso ($label): $entries" | tr '\n' ' '
echo
exec "$@"
