#!/bin/sh
# A bench variant, never shipped: put on PATH in front of the pinned kopia, it adds
# BSLS_BENCH_SERVER_ARGS to `kopia server start`, BSLS_BENCH_CONNECT_ARGS to
# `kopia repository connect` and BSLS_BENCH_CREATE_ARGS to `kopia repository create`,
# so `make bench` can measure a server flag or a repository setting without editing
# the rendered manifests or the pod scripts. BSLS_BENCH_KOPIA is the real binary.
set -eu
kopia=${BSLS_BENCH_KOPIA:?the real kopia binary (BSLS_BENCH_KOPIA) is not set}
if [ "$#" -ge 2 ]; then
  case "$1 $2" in
    "server start")
      shift 2
      # shellcheck disable=SC2086 # the variant's flags are split on purpose
      exec "$kopia" server start "$@" ${BSLS_BENCH_SERVER_ARGS:-}
      ;;
    "repository connect")
      shift 2
      # shellcheck disable=SC2086
      exec "$kopia" repository connect "$@" ${BSLS_BENCH_CONNECT_ARGS:-}
      ;;
    "repository create")
      shift 2
      # shellcheck disable=SC2086
      exec "$kopia" repository create "$@" ${BSLS_BENCH_CREATE_ARGS:-}
      ;;
  esac
fi
exec "$kopia" "$@"
