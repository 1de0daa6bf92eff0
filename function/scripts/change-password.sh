#!/bin/sh
# Changes the repository password of a BackupStorageLocationRepository: from the one in
# force (KOPIA_PASSWORD) to the one spec.passwordSecretRef now names
# (KOPIA_NEW_PASSWORD, which `kopia repository change-password` reads itself). Neither
# is ever printed or put on a command line. Run again after it succeeded, it finds the
# new password in force and changes nothing.
#
# Arguments: the storage flags of `kopia repository connect`.
set -eu

: "${KOPIA_PASSWORD:?the password in force (KOPIA_PASSWORD) is not set}"
: "${KOPIA_NEW_PASSWORD:?the new password (KOPIA_NEW_PASSWORD) is not set}"
: "${BSLS_IDENTITY_USERNAME:?} ${BSLS_IDENTITY_HOSTNAME:?}"

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
new_password=$KOPIA_NEW_PASSWORD
if [ "$new_password" = "$KOPIA_PASSWORD" ]; then
  echo "the new password is the one in force; nothing to change"
  exit 0
fi
# The new one already opens it: a run before this one changed it.
BSLS_PENDING_PASSWORD=$new_password
if ! try_connect "$errors" "$@"; then
  fail_for_storage "$errors"
fi
unset BSLS_PENDING_PASSWORD
if [ "$KOPIA_PASSWORD" = "$new_password" ]; then
  unset new_password
  echo "the new password is already in force"
  exit 0
fi
unset new_password

kopia repository change-password
echo "changed the repository password"

# Prove it: a fresh connection with the new password alone.
kopia repository disconnect
KOPIA_PASSWORD=$KOPIA_NEW_PASSWORD
unset KOPIA_NEW_PASSWORD
if ! try_connect "$errors" "$@"; then
  fail_for_storage "$errors"
fi
echo "the new password opens the repository"
