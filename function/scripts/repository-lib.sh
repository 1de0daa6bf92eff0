# Sourced by the repository's Job scripts: open the repository with the password in
# force (or the one a rotation is moving to), and apply the BSLR's settings. The
# function passes every setting in the environment (function/settings.py); passwords
# arrive in KOPIA_PASSWORD and BSLS_PENDING_PASSWORD and never reach a command line.
# shellcheck shell=sh

# try_connect ERRORS ARGS...: connect with KOPIA_PASSWORD; when kopia says that
# password is wrong and a rotation is under way (BSLS_PENDING_PASSWORD), with that one,
# which then stays in KOPIA_PASSWORD for every later command. kopia's errors go to ERRORS.
try_connect() {
  errors=$1
  shift
  if kopia repository connect "$@" \
      --override-username="${BSLS_IDENTITY_USERNAME:?}" \
      --override-hostname="${BSLS_IDENTITY_HOSTNAME:?}" \
      --no-persist-credentials 2>"$errors"; then
    return 0
  fi
  if [ -n "${BSLS_PENDING_PASSWORD:-}" ] && grep -qi "invalid repository password" "$errors"; then
    echo "the password in force does not open the repository; trying the one a rotation moves to"
    if KOPIA_PASSWORD="$BSLS_PENDING_PASSWORD" kopia repository connect "$@" \
        --override-username="${BSLS_IDENTITY_USERNAME:?}" \
        --override-hostname="${BSLS_IDENTITY_HOSTNAME:?}" \
        --no-persist-credentials 2>"$errors"; then
      KOPIA_PASSWORD=$BSLS_PENDING_PASSWORD
      export KOPIA_PASSWORD
      return 0
    fi
  fi
  return 1
}

# check_format: fail (exit 16) unless the open repository has the format in the spec.
# BSLS_FORMAT_CHECKS holds "field|fragment" lines; a fragment starting with ! must be
# absent from `kopia repository status --json`.
check_format() {
  status_json=$(kopia repository status --json)
  printf '%s\n' "${BSLS_FORMAT_CHECKS:-}" | while IFS='|' read -r field fragment; do
    [ -n "$field" ] || continue
    case "$fragment" in
      !*)
        if printf '%s' "$status_json" | grep -qF -- "${fragment#!}"; then
          echo "the repository has error correction on, but ${field} is not set" >&2
          exit 16
        fi
        ;;
      *)
        if ! printf '%s' "$status_json" | grep -qF -- "$fragment"; then
          echo "the repository was created with another ${field} than the spec's (${fragment})" >&2
          exit 16
        fi
        ;;
    esac
  done || exit 16
  echo "the repository has the format in the spec"
}

# apply_settings: make the repository's global policy, maintenance and object lock
# exactly what the BSLR says. Each command reports "no changes" when nothing differs.
apply_settings() {
  errors="${TMPDIR:-/tmp}/settings.err"
  # The Jobs connect as the maintenance identity: owning maintenance, they run it.
  extend=false
  if [ -n "${BSLS_RETENTION_MODE:-}" ]; then
    # Full maintenance extends the locks of the blobs still in use before they expire.
    extend=true
  fi
  kopia maintenance set --owner=me \
    --quick-interval="${BSLS_QUICK_INTERVAL:?}" \
    --full-interval="${BSLS_FULL_INTERVAL:?}" \
    --extend-object-locks="$extend"
  if [ -n "${BSLS_RETENTION_MODE:-}" ]; then
    if ! kopia repository set-parameters \
        --retention-mode="$BSLS_RETENTION_MODE" \
        --retention-period="${BSLS_RETENTION_PERIOD:?}" 2>"$errors"; then
      cat "$errors" >&2
      if grep -qiE "object ?lock" "$errors"; then
        echo "the bucket refused object lock: it must be created with object lock enabled" >&2
        exit 17
      fi
      fail_for_storage "$errors"
    fi
    cat "$errors" >&2
  fi
  # Word splitting is wanted: the flags hold no spaces (function/settings.py).
  # shellcheck disable=SC2086
  kopia policy set --global ${BSLS_POLICY_FLAGS:?}
  # `--clear-ignore` and `--add-ignore` in one command only clear (kopia 0.23.1).
  kopia policy set --global --clear-ignore
  if [ -n "${BSLS_POLICY_IGNORE:-}" ]; then
    set --
    newline='
'
    old_ifs=$IFS
    IFS=$newline
    set -f  # a rule such as *.tmp is kopia's pattern, not the shell's
    for rule in $BSLS_POLICY_IGNORE; do
      set -- "$@" "--add-ignore=$rule"
    done
    set +f
    IFS=$old_ifs
    kopia policy set --global "$@"
  fi
}
