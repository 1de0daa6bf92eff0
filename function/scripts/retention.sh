#!/bin/sh
# Expires the snapshots of append-only users: the retention the server enforces.
#
# Arguments: the storage flags of `kopia repository connect`.
# The append-only identities are those the repository's access rules give APPEND on
# their own snapshots (the sync Job installs them, function/access.py). A snapshot of
# one of them is deleted once the server stored it more than BSLS_RETENTION_KEEP_DAYS
# days ago, unless it is one of that identity's BSLS_RETENTION_KEEP_LATEST newest.
# Age is the manifest's modification time, which the server sets when it stores the
# snapshot: a client cannot date a snapshot into the past to have it kept less long,
# nor into the future to push real ones out (as it can with kopia's own retention,
# which reads the start time the client reports).
set -eu
export LC_ALL=C  # byte order for sort and the time comparisons

: "${KOPIA_PASSWORD:?the repository password (KOPIA_PASSWORD) is not set}"
: "${BSLS_IDENTITY_USERNAME:?} ${BSLS_IDENTITY_HOSTNAME:?}"
: "${BSLS_RETENTION_KEEP_DAYS:?} ${BSLS_RETENTION_KEEP_LATEST:?}"

set -- "$@" \
  --content-cache-size-mb="${BSLS_CONTENT_CACHE_MB:?}" \
  --content-cache-size-limit-mb="${BSLS_CONTENT_CACHE_LIMIT_MB:?}" \
  --metadata-cache-size-mb="${BSLS_METADATA_CACHE_MB:?}" \
  --metadata-cache-size-limit-mb="${BSLS_METADATA_CACHE_LIMIT_MB:?}"

# shellcheck source=storage-errors.sh
. "$(dirname "$0")/storage-errors.sh"
# shellcheck source=repository-lib.sh
. "$(dirname "$0")/repository-lib.sh"

tmp=${TMPDIR:-/tmp}
echo "connecting to the repository as ${BSLS_IDENTITY_USERNAME}@${BSLS_IDENTITY_HOSTNAME}"
# During a password rotation: the new password when the one in force is refused.
if ! try_connect "$tmp/connect.err" "$@"; then
  fail_for_storage "$tmp/connect.err"
fi

# BSLS_RETENTION_NOW (seconds since the epoch) is for tests only; a cluster never sets it.
now=${BSLS_RETENTION_NOW:-$(date -u +%s)}
cutoff=$(date -u -d "@$((now - BSLS_RETENTION_KEEP_DAYS * 86400))" +%Y-%m-%dT%H:%M:%SZ)
echo "expiring snapshots of append-only users stored before ${cutoff}," \
  "keeping the newest ${BSLS_RETENTION_KEEP_LATEST} of each"

# {"id":..,"user":"<identity>","target":{"hostname":"OWN_HOST","type":"snapshot",
# "username":"OWN_USER"},"access":"APPEND"}: the append-only identities.
kopia server acl list --json |
  sed -n 's/^ *{"id":"[0-9a-f]*","user":"\([a-z0-9._-]*@[a-z0-9._-]*\)","target":{"hostname":"OWN_HOST","type":"snapshot","username":"OWN_USER"},"access":"APPEND"},\{0,1\}$/\1/p' \
  >"$tmp/append"

# One line per snapshot manifest: {"id":..,"length":..,"labels":{"hostname":..,
# "path":..,"type":"snapshot","username":..},"mtime":..}. kopia writes the labels
# sorted, so hostname comes first and username last; a path cannot contain an
# unescaped quote, so these anchors cannot be forged from inside it.
kopia manifest list --json --filter=type:snapshot >"$tmp/manifests.json"
sed -n 's/^ *{"id":"\([0-9a-f]*\)",.*"labels":{"hostname":"\([a-z0-9._-]*\)",.*"username":"\([a-z0-9._-]*\)"},"mtime":"\([0-9T:.Z-]*\)"},\{0,1\}$/\3@\2 \4 \1/p' \
  "$tmp/manifests.json" >"$tmp/snapshots"

# Newest first per identity; past the newest KEEP_LATEST, what is older than the cutoff.
awk 'NR == FNR { if ($1 != "") wanted[$1] = 1; next } ($1 in wanted)' \
  "$tmp/append" "$tmp/snapshots" |
  sort -k1,1 -k2,2r |
  awk -v keep="${BSLS_RETENTION_KEEP_LATEST}" -v cutoff="$cutoff" '
    $1 != who { who = $1; n = 0 }
    { n++; stored = substr($2, 1, 19) "Z" }
    n > keep && stored < cutoff { print $3 }
  ' >"$tmp/expired"

expired=$(wc -l <"$tmp/expired")
if [ "$expired" -gt 0 ]; then
  xargs -n 50 sh -c 'kopia snapshot delete "$@" --delete >/dev/null' expire <"$tmp/expired"
fi
echo "expired ${expired} snapshot(s) of $(grep -c . "$tmp/append" || true) append-only user(s)"
