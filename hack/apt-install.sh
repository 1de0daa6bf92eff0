#!/bin/sh
# Installs the Debian packages named after the first argument, if any is missing.
# Usage: hack/apt-install.sh WHO PACKAGE...   (WHO: who needs them, for the message)
# Nothing happens when every package is installed; a non-root caller is told what to
# install instead.
set -eu

who=$1
shift
missing=""
for p in "$@"; do
  if ! dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing="$missing $p"
  fi
done
if [ -z "$missing" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "$who needs these Debian packages:$missing (run as root to install them)" >&2
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
