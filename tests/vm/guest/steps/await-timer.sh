#!/bin/sh
# Waits (up to $1 seconds) until the timer has fired and kopia-backup.service has run
# to its end, then fails unless that run succeeded.
set -eu
deadline=$(($(date +%s) + $1))
until [ "$(systemctl --user show -P ExecMainExitTimestampMonotonic kopia-backup.service)" != 0 ]; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    systemctl --user status kopia-backup.timer kopia-backup.service || true
    exit 1
  fi
  sleep 1
done
systemctl --user show kopia-backup.timer -p LastTriggerUSec
systemctl --user show kopia-backup.service -p Result -p ExecMainStatus
[ "$(systemctl --user show -P Result kopia-backup.service)" = success ]
