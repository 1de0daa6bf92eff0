#!/bin/sh
# Makes the users stored in the Kopia repository exactly the users in the BSLS spec.
#
# Arguments: the storage flags of `kopia repository connect`.
# BSLS_USERS_DIR holds one file per identity (user@host) whose content is the password;
# the files come from the users' credentials Secrets. The spec wins: missing users are
# added, every listed user gets the password from its Secret (also over one changed
# through the server), and users that are no longer listed are deleted. Then the running
# server is told to re-read its users. Passwords are never printed.
set -eu

: "${KOPIA_PASSWORD:?the repository password (KOPIA_PASSWORD) is not set}"
: "${BSLS_USERS_DIR:?} ${BSLS_IDENTITY_USERNAME:?} ${BSLS_IDENTITY_HOSTNAME:?}"

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

echo "connecting to the repository as ${BSLS_IDENTITY_USERNAME}@${BSLS_IDENTITY_HOSTNAME}"
if ! try_connect "${TMPDIR:-/tmp}/connect.err" "$@"; then
  fail_for_storage "${TMPDIR:-/tmp}/connect.err"
fi

existing=$(kopia server users list)

is_existing() {
  printf '%s\n' "$existing" | grep -qxF -- "$1"
}

added=0
updated=0
for file in "${BSLS_USERS_DIR}"/*; do
  [ -f "$file" ] || continue
  identity=$(basename "$file")
  case "$identity" in
    ..*) continue ;;  # the projected volume's own bookkeeping entries
  esac
  password=$(cat "$file")
  if is_existing "$identity"; then
    kopia server users set "$identity" --user-password="$password" >/dev/null
    updated=$((updated + 1))
  else
    kopia server users add "$identity" --user-password="$password" >/dev/null
    echo "added ${identity}"
    added=$((added + 1))
  fi
done
unset password

deleted=0
for identity in $existing; do
  if [ ! -f "${BSLS_USERS_DIR}/${identity}" ]; then
    kopia server users delete "$identity"
    echo "deleted ${identity}"
    deleted=$((deleted + 1))
  fi
done
echo "users in sync: ${added} added, ${updated} updated, ${deleted} deleted"

if [ -z "${BSLS_SERVER_URL:-}" ]; then
  exit 0
fi

# The server loads users when its view of the repository refreshes; ask it to refresh
# now. The control password arrives in KOPIA_SERVER_PASSWORD, which on a client names
# the control user's password. The server is verified like any client verifies it: its
# certificate must chain to the CA in SSL_CERT_FILE and name the Service's host, so the
# control password never reaches a machine in the middle. While the server cannot be
# reached (it is starting, or not deployed yet) retry; if it never answers, it loads the
# users when it starts. A server that answers but fails verification (exit 20) or refuses
# the control password (exit 21) fails the Job at once; any other answer fails this pod.
: "${SSL_CERT_FILE:?the CA bundle that verifies the server (SSL_CERT_FILE) is not set}"
attempts=${BSLS_REFRESH_ATTEMPTS:-30}
errors=${TMPDIR:-/tmp}/refresh.err
i=1
while :; do
  if kopia server refresh \
      --address="${BSLS_SERVER_URL}" \
      --server-control-username="${BSLS_CONTROL_USERNAME:?}" 2>"$errors"; then
    echo "the server re-read its users"
    exit 0
  fi
  if grep -qi "x509\|certificate" "$errors"; then
    cat "$errors" >&2
    echo "the refresh failed: the server's certificate did not verify against the CA bundle" >&2
    exit 20
  fi
  if grep -qiE "401|unauthorized|access denied" "$errors"; then
    cat "$errors" >&2
    echo "the refresh failed: the server refused the control password" >&2
    exit 21
  fi
  if ! grep -qiE "connection refused|no such host|i/o timeout|timed out|connection reset|EOF|no route to host" "$errors"; then
    cat "$errors" >&2
    echo "the refresh failed" >&2
    exit 1
  fi
  if [ "$i" -ge "$attempts" ]; then
    cat "$errors" >&2
    echo "the server did not answer; it loads the users when it starts or at its next refresh" >&2
    exit 0
  fi
  i=$((i + 1))
  sleep "${BSLS_REFRESH_DELAY:-5}"
done
