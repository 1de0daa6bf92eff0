#!/bin/sh
# What the VM owner sees afterwards, for the test to compare on the host: the restored
# folder and their snapshots.
set -eu
cp -a "$HOME/projects" /run/out/restored
kopia snapshot list --json >/run/out/snapshots.json
