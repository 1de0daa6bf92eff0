#!/bin/sh
# Reports when each user last stored a snapshot: the backup freshness on the BSLS status.
#
# Connects to the server (never to the storage) as freshness@bsls-system, which the
# access rules let read snapshot records and nothing else: no content, so no file data;
# no policy, no user account, no access rule (function/access.py). For every identity
# with snapshots it writes when the server stored the newest one, that snapshot's size
# and how many there are, as JSON, to the report ConfigMap, through the Kubernetes API
# with this pod's short-lived ServiceAccount token (its Role allows get and patch on
# that one ConfigMap). The stored time is the manifest's modification time, which the
# server sets: a client cannot date a snapshot into the future to look fresh.
set -eu
export LC_ALL=C
umask 077

: "${KOPIA_PASSWORD:?the password of the freshness reader (KOPIA_PASSWORD) is not set}"
: "${BSLS_SERVER_URL:?} ${BSLS_IDENTITY_USERNAME:?} ${BSLS_IDENTITY_HOSTNAME:?}"
: "${BSLS_REPORT_CONFIGMAP:?} ${BSLS_REPORT_KEY:?} ${BSLS_API_DIR:?}"
: "${KUBERNETES_SERVICE_HOST:?the address of the Kubernetes API is not in the environment}"
: "${KUBERNETES_SERVICE_PORT:?}"

tmp=${TMPDIR:-/tmp}
api=$BSLS_API_DIR

echo "connecting to ${BSLS_SERVER_URL} as ${BSLS_IDENTITY_USERNAME}@${BSLS_IDENTITY_HOSTNAME}"
kopia repository connect server --url="$BSLS_SERVER_URL" \
  --override-username="$BSLS_IDENTITY_USERNAME" \
  --override-hostname="$BSLS_IDENTITY_HOSTNAME" \
  --content-cache-size-mb="${BSLS_CONTENT_CACHE_MB:?}" \
  --content-cache-size-limit-mb="${BSLS_CONTENT_CACHE_LIMIT_MB:?}" \
  --metadata-cache-size-mb="${BSLS_METADATA_CACHE_MB:?}" \
  --metadata-cache-size-limit-mb="${BSLS_METADATA_CACHE_LIMIT_MB:?}" >/dev/null

reported=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# One line per snapshot manifest, as retention.sh reads them: kopia writes the labels
# sorted, so hostname comes first and username last, and a path cannot hold an
# unescaped quote, so the anchors cannot be forged from inside it.
kopia manifest list --json --filter=type:snapshot >"$tmp/manifests.json"
sed -n 's/^ *{"id":"\([0-9a-f]*\)",.*"labels":{"hostname":"\([a-z0-9._-]*\)",.*"username":"\([a-z0-9._-]*\)"},"mtime":"\([0-9T:.Z-]*\)"},\{0,1\}$/\3@\2 \4 \1/p' \
  "$tmp/manifests.json" >"$tmp/snapshots"

# Per identity, newest first: identity, stored time (to the second), id, count.
sort -k1,1 -k2,2r "$tmp/snapshots" |
  awk '
    $1 != who { if (who != "") print who, when, id, n; who = $1; when = substr($2, 1, 19) "Z"; id = $3; n = 0 }
    { n++ }
    END { if (who != "") print who, when, id, n }
  ' >"$tmp/newest"

# The size of each newest snapshot: its manifest's stats.totalSize (kopia prints the
# manifest as indented JSON, one field a line).
: >"$tmp/users"
while read -r who when id count; do
  size=$(kopia manifest show "$id" | sed -n 's/^ *"totalSize": *\([0-9]*\),\{0,1\}$/\1/p' | head -n 1)
  printf '%s %s %s %s\n' "$who" "$when" "${size:-0}" "$count" >>"$tmp/users"
done <"$tmp/newest"

# {"reportedAt":..,"users":[{"identity":..,"lastBackup":..,"lastBackupBytes":..,"snapshots":..}]}
# Identities hold only [a-z0-9._-@], times and sizes only digits and [TZ:-]: nothing to escape.
awk -v at="$reported" '
  BEGIN { printf "{\"reportedAt\":\"%s\",\"users\":[", at }
  { printf "%s{\"identity\":\"%s\",\"lastBackup\":\"%s\",\"lastBackupBytes\":%s,\"snapshots\":%s}", (NR > 1 ? "," : ""), $1, $2, $3, $4 }
  END { printf "]}" }
' "$tmp/users" >"$tmp/report.json"

# A merge patch of the one data key: the report as a JSON string (its quotes escaped).
printf '{"data":{"%s":"%s"}}' "$BSLS_REPORT_KEY" "$(sed 's/"/\\"/g' "$tmp/report.json")" \
  >"$tmp/patch.json"

# The token goes in a header file: never on a command line.
printf 'Authorization: Bearer %s\n' "$(cat "$api/token")" >"$tmp/auth"
host=$KUBERNETES_SERVICE_HOST
case $host in *:*) host="[$host]" ;; esac
namespace=$(cat "$api/namespace")
url="https://${host}:${KUBERNETES_SERVICE_PORT}/api/v1/namespaces/${namespace}/configmaps/${BSLS_REPORT_CONFIGMAP}"
if ! curl --silent --show-error --fail-with-body --max-time 60 --cacert "$api/ca.crt" \
  --header @"$tmp/auth" --header 'Content-Type: application/merge-patch+json' \
  --request PATCH --data-binary @"$tmp/patch.json" --output "$tmp/answer" "$url"; then
  rm -f "$tmp/auth"
  echo "cannot write the report to ConfigMap ${namespace}/${BSLS_REPORT_CONFIGMAP}:" >&2
  cat "$tmp/answer" >&2 2>/dev/null || true
  exit 1
fi
rm -f "$tmp/auth"
echo "reported $(wc -l <"$tmp/users") identit(ies) with snapshots at ${reported}"
