#!/bin/sh
# Connects to the Kopia repository of a BackupStorageLocationRepository, or creates it
# when the storage holds no repository yet, then applies the BSLR's settings.
# `kopia repository create` refuses storage that already holds data, so existing data
# is never overwritten, and a wrong password for an existing repository fails here
# instead of being papered over. A repository that exists must have the format the
# spec says (exit 16 names the field); a new one is created with it.
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
# shellcheck source=repository-lib.sh
. "$(dirname "$0")/repository-lib.sh"

errors="${TMPDIR:-/tmp}/connect.err"

if try_connect "$errors" "$@"; then
  echo "connected to the existing repository"
  check_format
else
  if grep -qi "invalid repository password" "$errors"; then
    fail_for_storage "$errors"
  fi
  echo "no repository could be opened; creating one"
  cat "$errors" >&2
  retention=""
  if [ -n "${BSLS_RETENTION_MODE:-}" ]; then
    retention="--retention-mode=${BSLS_RETENTION_MODE} --retention-period=${BSLS_RETENTION_PERIOD:?}"
  fi
  # Word splitting is wanted: the flags hold no spaces (function/settings.py).
  # shellcheck disable=SC2086
  if ! kopia repository create "$@" ${BSLS_FORMAT_FLAGS:-} $retention \
      --override-username="${BSLS_IDENTITY_USERNAME}" \
      --override-hostname="${BSLS_IDENTITY_HOSTNAME}" \
      --no-persist-credentials 2>"$errors"; then
    if grep -qiE "object ?lock" "$errors"; then
      cat "$errors" >&2
      echo "the bucket refused object lock: it must be created with object lock enabled" >&2
      exit 17
    fi
    fail_for_storage "$errors"
  fi
  echo "created the repository"
fi

apply_settings
kopia maintenance info
