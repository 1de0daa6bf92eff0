#!/bin/sh
# After a refused connect: kopia wrote no connection (the script's copy of the CA and
# bsls.env may be there; they hold nothing secret).
set -eu
ls -la "$HOME/.config/kopia" || true
[ ! -e "$HOME/.config/kopia/repository.config" ]
