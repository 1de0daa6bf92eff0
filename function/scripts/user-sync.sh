#!/bin/sh
# Makes the users stored in the Kopia repository exactly the users in the BSLS spec.
#
# Arguments: the storage flags of `kopia repository connect`.
# BSLS_USERS_DIR holds one folder per access mode (full, append, restore, and reader for
# the freshness reader), each with one file per identity (user@host) whose content is
# the password; the files come from the users' credentials Secrets. The spec wins:
# missing users are added, every listed user gets the password from its Secret (also
# over one changed through the server), users no longer listed are deleted, and the
# repository's access rules become exactly those of BSLS_ACCESS_RULES for each
# identity's mode. Then the running server is told to re-read both. Passwords are never
# printed.
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

tmp=${TMPDIR:-/tmp}
: >"$tmp/listed"
added=0
updated=0
for file in "${BSLS_USERS_DIR}"/*/*; do
  [ -f "$file" ] || continue
  identity=$(basename "$file")
  mode=$(basename "$(dirname "$file")")
  case "$identity" in
    ..*) continue ;;  # the projected volume's own bookkeeping entries
  esac
  printf '%s %s\n' "$mode" "$identity" >>"$tmp/listed"
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
  if ! cut -d' ' -f2 "$tmp/listed" | grep -qxF -- "$identity"; then
    kopia server users delete "$identity"
    echo "deleted ${identity}"
    deleted=$((deleted + 1))
  fi
done
echo "users in sync: ${added} added, ${updated} updated, ${deleted} deleted"

# Access rules (function/access.py). BSLS_ACCESS_RULES holds `who access key=value,...`
# lines: `*` is every identity (`*@*`), any other `who` a mode whose identities each get
# the rule. The repository's entries become exactly these. New ones are added before
# old ones go, so there is never a moment without any (kopia would then fall back to
# its built-in rules). `kopia server acl enable` is never run: its defaults let every
# user change its own password.
: "${BSLS_ACCESS_RULES:?the access rules (BSLS_ACCESS_RULES) are not set}"
printf '%s\n' "$BSLS_ACCESS_RULES" | while read -r who level target; do
  [ -n "$who" ] || continue
  if [ "$who" = "*" ]; then
    echo "*@* $level $target"
  else
    awk -v m="$who" -v rest="$level $target" '$1 == m { print $2 " " rest }' "$tmp/listed"
  fi
done >"$tmp/acl.wanted"
kopia server acl list --json >"$tmp/acl.json"
# {"id":"<id>","user":"<user>","target":{"<k>":"<v>",...},"access":"<level>"} becomes
# `<id> <user> <level> <k>=<v>,...` (kopia writes the target's keys sorted).
sed -n 's/^ *{"id":"\([0-9a-f]*\)","user":"\([^" ]*\)","target":{\([^{}]*\)},"access":"\([A-Z]*\)"},\{0,1\}$/\1 \2 \4 \3/p' "$tmp/acl.json" |
  sed 's/"\([^"]*\)":"\([^"]*\)"/\1=\2/g' >"$tmp/acl.current"
if [ "$(grep -c '"id":' "$tmp/acl.json" || true)" -ne "$(wc -l <"$tmp/acl.current")" ]; then
  echo "the repository holds an access rule this Job cannot read; see kopia server acl list --json" >&2
  exit 1
fi
cut -d' ' -f2- "$tmp/acl.current" >"$tmp/acl.have"
granted=0
while read -r user level target; do
  if ! grep -qxF -- "$user $level $target" "$tmp/acl.have"; then
    kopia server acl add --user="$user" --access="$level" --target="$target" --overwrite
    granted=$((granted + 1))
  fi
done <"$tmp/acl.wanted"
revoked=0
while read -r id user level target; do
  if ! grep -qxF -- "$user $level $target" "$tmp/acl.wanted"; then
    kopia server acl delete "$id" --delete
    revoked=$((revoked + 1))
  fi
done <"$tmp/acl.current"
echo "access rules in place: ${granted} added, ${revoked} removed"

# Users with access `append` keep every snapshot as far as kopia's own retention goes:
# all its counts 0 mean "keep all" (snapshot/policy/retention_policy.go), on the user's
# policy and on any path policy it wrote while it had full access. The server would
# otherwise apply kopia's retention on the client's request, and a client that adds
# snapshots dated in the future pushes every real one out of it. The retention CronJob
# expires them instead, by the time the server stored them.
kopia policy list | cut -d' ' -f2- >"$tmp/policies"
kept=0
while read -r identity; do
  [ -n "$identity" ] || continue
  { echo "$identity"; grep -F -- "$identity:" "$tmp/policies" | grep -F -x -v -- "$identity" || true; } |
    while IFS= read -r target; do
      case "$target" in
        "$identity" | "$identity":*) ;;
        *) continue ;;
      esac
      kopia policy set "$target" --keep-latest=0 --keep-hourly=0 --keep-daily=0 \
        --keep-weekly=0 --keep-monthly=0 --keep-annual=0 >/dev/null
    done
  kept=$((kept + 1))
done <<APPEND
$(awk '$1 == "append" { print $2 }' "$tmp/listed")
APPEND
echo "retention held by the server for ${kept} append-only user(s)"

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
