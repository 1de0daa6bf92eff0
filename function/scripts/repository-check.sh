#!/bin/sh
# The periodic check of a BackupStorageLocationRepository: the storage answers, the
# repository opens, its password still works. Then keeps its settings as the spec says
# and runs the maintenance the function found due (BSLS_MAINTENANCE: "quick", "full",
# "quick,full" or empty). The function reads the outcome from the Job's status: exit 0,
# or an exit code per cause (function/failures.py).
#
# Arguments: the storage flags of `kopia repository connect`.
set -eu

: "${KOPIA_PASSWORD:?the repository password (KOPIA_PASSWORD) is not set}"
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
if ! try_connect "$errors" "$@"; then
  if grep -qi "repository not initialized" "$errors"; then
    cat "$errors" >&2
    echo "the storage holds no Kopia repository any more (its data or the bucket is gone)" >&2
    exit 15
  fi
  fail_for_storage "$errors"
fi
echo "the storage answers, the repository opens and its password works"

apply_settings

case ",${BSLS_MAINTENANCE:-}," in
  *,quick,*)
    kopia maintenance run
    ;;
esac
case ",${BSLS_MAINTENANCE:-}," in
  *,full,*)
    kopia maintenance run --full
    ;;
esac
kopia maintenance info
