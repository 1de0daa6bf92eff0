#!/bin/sh
# Starts the Kopia repository server of a BackupStorageLocationServer.
#
# Arguments: the storage flags of `kopia repository connect` (e.g. `s3 --bucket=b`).
# The repository password arrives in KOPIA_PASSWORD and the control user's password in
# KOPIA_SERVER_CONTROL_PASSWORD, both from Secrets; neither ever appears on a command
# line. The server re-connects on every start: its config lives in an emptyDir.
set -eu

: "${KOPIA_PASSWORD:?the repository password (KOPIA_PASSWORD) is not set}"
: "${KOPIA_SERVER_CONTROL_PASSWORD:?the control password (KOPIA_SERVER_CONTROL_PASSWORD) is not set}"
: "${BSLS_IDENTITY_USERNAME:?} ${BSLS_IDENTITY_HOSTNAME:?} ${BSLS_LISTEN_ADDRESS:?}"
: "${BSLS_TLS_DIR:?} ${BSLS_CONTROL_USERNAME:?}"

if [ -n "${KOPIA_SERVER_PASSWORD:-}" ]; then
  echo "refusing to start: KOPIA_SERVER_PASSWORD would enable a full-power UI user" >&2
  exit 1
fi

# kopia's cache, sized by the function (its own default, 5,000 MB twice, would outgrow
# the pod's ephemeral storage).
set -- "$@" \
  --content-cache-size-mb="${BSLS_CONTENT_CACHE_MB:?}" \
  --content-cache-size-limit-mb="${BSLS_CONTENT_CACHE_LIMIT_MB:?}" \
  --metadata-cache-size-mb="${BSLS_METADATA_CACHE_MB:?}" \
  --metadata-cache-size-limit-mb="${BSLS_METADATA_CACHE_LIMIT_MB:?}"

# shellcheck source=repository-lib.sh
. "$(dirname "$0")/repository-lib.sh"

# During a password rotation the one in force may already be the old one: try_connect
# then opens the repository with the new one (BSLS_PENDING_PASSWORD), so the server
# starts at every moment of a rotation.
echo "connecting to the repository as ${BSLS_IDENTITY_USERNAME}@${BSLS_IDENTITY_HOSTNAME}"
if ! try_connect "${TMPDIR:-/tmp}/connect.err" "$@"; then
  cat "${TMPDIR:-/tmp}/connect.err" >&2
  exit 1
fi

# A brought certificate in cert-manager's shape keeps its CA out of tls.crt: serve the
# whole chain, so clients that trust ca.crt (or check a fingerprint) find it.
cert_file="${BSLS_TLS_DIR}/tls.crt"
if [ "${BSLS_TLS_APPEND_CA:-}" = true ]; then
  cert_file="${TMPDIR:-/tmp}/tls-chain.crt"
  cat "${BSLS_TLS_DIR}/tls.crt" "${BSLS_TLS_DIR}/ca.crt" >"$cert_file"
fi

# The storage flags were for the connect above; reuse "$@" for optional server flags.
# Prometheus metrics only when the spec asks for them (spec.metrics.enabled).
set --
if [ -n "${BSLS_METRICS_ADDRESS:-}" ]; then
  set -- --metrics-listen-addr="${BSLS_METRICS_ADDRESS}"
fi

echo "starting the server on ${BSLS_LISTEN_ADDRESS}"
exec kopia server start "$@" \
  --address="${BSLS_LISTEN_ADDRESS}" \
  --tls-cert-file="$cert_file" \
  --tls-key-file="${BSLS_TLS_DIR}/tls.key" \
  --server-control-username="${BSLS_CONTROL_USERNAME}" \
  --refresh-interval="${BSLS_REFRESH_INTERVAL:-15m}" \
  --log-level="${BSLS_LOG_LEVEL:-info}" \
  --json-log-console \
  --log-server-requests \
  --no-ui \
  --no-persist-credentials
