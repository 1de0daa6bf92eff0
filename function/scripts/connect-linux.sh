#!/bin/sh
# Connects kopia with verified TLS, from the bundle files beside this script.
# See docs/vm-user-guide.md.
set -eu
b=$(cd "$(dirname "$0")" && pwd)
d=${XDG_CONFIG_HOME:-$HOME/.config}/kopia
url=${BSLS_ENDPOINT:-$(cat "$b/endpoint")}
ca=$d/bsls-$(echo "$url" | sed 's|^https://||; s|:[0-9]*$||; s|[][]||g').crt
mkdir -p "$d"
cp "$b/ca.crt" "$ca"
export SSL_CERT_FILE="$ca"
echo "SSL_CERT_FILE=$ca" >"$d/bsls.env"
if [ -r "$b/password" ]; then
  KOPIA_PASSWORD=$(cat "$b/password")
  export KOPIA_PASSWORD
fi
kopia repository connect server --url="$url" \
  --override-username="$(cat "$b/username")" --override-hostname="$(cat "$b/hostname")"
echo "Later kopia commands need SSL_CERT_FILE=$ca (see $d/bsls.env)"
