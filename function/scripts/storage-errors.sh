# Sourced by the Job scripts: why kopia could not open or create the repository, as an
# exit code the Job's podFailurePolicy turns into a failure the function explains
# (function/failures.py lists the codes). Prints kopia's own error first.
# shellcheck shell=sh

# fail_for_storage FILE: exit with the code that names the cause kopia wrote to FILE.
fail_for_storage() {
  cat "$1" >&2
  if grep -qi "invalid repository password" "$1"; then
    echo "the storage holds a repository, but its password is not the one in passwordSecretRef" >&2
    exit 10
  fi
  if grep -qiE "bucket does not exist|NoSuchBucket|ContainerNotFound|container does not exist" "$1"; then
    echo "the bucket (or container) does not exist; kopia does not create it" >&2
    exit 11
  fi
  if grep -qiE "AccessDenied|Access Denied|InvalidAccessKeyId|SignatureDoesNotMatch|AuthenticationFailed|permission denied|403" "$1"; then
    echo "the storage refused the credentials (or the volume is not writable)" >&2
    exit 12
  fi
  if grep -qiE "connection refused|no such host|i/o timeout|timed out|no route to host|network is unreachable" "$1"; then
    echo "the storage could not be reached" >&2
    exit 13
  fi
  if grep -qi "found existing data in storage location" "$1"; then
    echo "the storage holds data that is not a Kopia repository" >&2
    exit 14
  fi
  if grep -qi "repository not initialized" "$1"; then
    echo "the storage answers, but holds no Kopia repository" >&2
    exit 15
  fi
  exit 1
}
