#!/bin/sh
# Connects to the Kopia repository of a BackupStorageLocationRepository, or creates it
# when the storage holds no repository yet. `kopia repository create` refuses storage
# that already holds data, so existing data is never overwritten, and a wrong password
# for an existing repository fails here instead of being papered over.
#
# Arguments: the storage flags of `kopia repository connect` / `create`.
set -eu

: "${KOPIA_PASSWORD:?the repository password (KOPIA_PASSWORD) is not set}"
: "${BSLS_IDENTITY_USERNAME:?} ${BSLS_IDENTITY_HOSTNAME:?}"

# kopia's cache, sized by the function (its own default, 5,000 MB twice, would outgrow
# the pod's ephemeral storage).
set -- "$@" \
  --content-cache-size-mb="${BSLS_CONTENT_CACHE_MB:?}" \
  --content-cache-size-limit-mb="${BSLS_CONTENT_CACHE_LIMIT_MB:?}" \
  --metadata-cache-size-mb="${BSLS_METADATA_CACHE_MB:?}" \
  --metadata-cache-size-limit-mb="${BSLS_METADATA_CACHE_LIMIT_MB:?}"

# shellcheck source=storage-errors.sh
. "$(dirname "$0")/storage-errors.sh"

errors="${TMPDIR:-/tmp}/connect.err"
identity="--override-username=${BSLS_IDENTITY_USERNAME}"
host="--override-hostname=${BSLS_IDENTITY_HOSTNAME}"

if kopia repository connect "$@" "$identity" "$host" --no-persist-credentials 2>"$errors"; then
  echo "connected to the existing repository"
else
  if grep -qi "invalid repository password" "$errors"; then
    fail_for_storage "$errors"
  fi
  echo "no repository could be opened; creating one"
  cat "$errors" >&2
  if ! kopia repository create "$@" "$identity" "$host" --no-persist-credentials 2>"$errors"; then
    fail_for_storage "$errors"
  fi
  echo "created the repository"
fi

# The server connects under this same identity, so it owns and runs maintenance.
kopia maintenance set --owner=me
kopia maintenance info
