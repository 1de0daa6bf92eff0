#!/bin/sh
# The guest side of the VM suite (tests/vm): the seed disk's `run`, which the guest
# image's bsls-seed.service runs as root once the network is up.
#
# It runs the steps of /run/seed/plan in order, one per line: WHO ON-FAILURE STEP [ARG...].
# WHO is root, or a user: each user step is a login of its own (`su -l`), as the VM
# owner logging in again, so what a step leaves in ~/.profile is what the next one
# gets. ON-FAILURE is `stop` (end the run) or `go` (a step that is meant to fail).
# Steps are /run/seed/steps/STEP.sh, run with `sh -eux`: the guide's marked blocks as
# written, and the harness's own (setup, test data, waiting for the timer, ...).
#
# Each step's output goes to /run/out/NN-STEP.log. Progress goes to the second serial
# port, which the test follows: "BSLS <uptime> ready", "... start N STEP",
# "... end N STEP RC", "... done RC". At the end /run/out is written as a tar to the disk
# with serial bsls-out, and the guest powers off.
set -eu
seed=/run/seed
out=/run/out

report() {
  printf 'BSLS %s %s\n' "$(cut -d' ' -f1 /proc/uptime)" "$*" >/dev/ttyS1
}

finish() {
  rc=$?
  tar -C "$out" -cf /dev/disk/by-id/virtio-bsls-out . || rc=97
  sync
  report "done" "$rc"
  systemctl poweroff --no-block
}

mkdir -p "$out"
chmod 1777 "$out"
trap finish EXIT
report ready
n=0
while read -r who policy step args; do
  n=$((n + 1))
  log=$out/$(printf %02d "$n")-$step.log
  report start "$n" "$step"
  rc=0
  if [ "$who" = root ]; then
    # shellcheck disable=SC2086 # the plan's arguments are words
    sh -eux "$seed/steps/$step.sh" $args >"$log" 2>&1 </dev/null || rc=$?
  else
    su -l "$who" -c "sh -eux $seed/steps/$step.sh $args" >"$log" 2>&1 </dev/null || rc=$?
  fi
  report end "$n" "$step" "$rc"
  if [ "$rc" -ne 0 ] && [ "$policy" = stop ]; then
    exit 1
  fi
done <"$seed/plan"
