#!/bin/sh
# The one change the test makes to the guide's units: the timer fires 2 s after it
# starts instead of daily with up to an hour's random delay. A drop-in, so the guide's
# own timer file stays as written (OnCalendar= empties its list of triggers first).
set -eu
d=$HOME/.config/systemd/user/kopia-backup.timer.d
mkdir -p "$d"
printf '[Timer]\nOnCalendar=\nOnActiveSec=2s\nRandomizedDelaySec=0\n' >"$d/50-test.conf"
