#!/bin/sh
# Starts the function, renders an example XR through the real `crossplane render`,
# prints the YAML stream and stops the function.
#
# Usage: hack/render.sh [XR] [COMPOSITION] [REQUIRED]   (defaults: the BSLS example)
# The XRD next to the Composition supplies the schema defaults.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
xr=${1:-$root/examples/bsls.yaml}
composition=${2:-$root/apis/bsls/composition.yaml}
required=${3:-$root/examples/required}
port=${BSLS_RENDER_PORT:-9443}
log=$(mktemp)

"$root/.venv/bin/python" -m function.main --insecure --address="127.0.0.1:$port" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT INT TERM

i=0
until "$root/.venv/bin/python" -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; do
  i=$((i + 1))
  if [ "$i" -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
    echo "the function did not start on 127.0.0.1:$port:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.1
done

"$root/.tools/bin/crossplane" render "$xr" "$composition" "$root/examples/functions.yaml" \
  --required-resources="$required" \
  --xrd="$(dirname "$composition")/definition.yaml" \
  --function-annotations="render.crossplane.io/runtime-development-target=127.0.0.1:$port" \
  --include-full-xr
