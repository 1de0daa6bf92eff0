#!/bin/sh
# Builds the Go programs the real node runs into .tools/bin, from the wrapper modules in
# tools/, the same way hack/tools.sh builds the test tools:
#
#   kube-node  -> kubelet, kube-controller-manager, kube-scheduler, kube-proxy, kubectl
#   coredns    -> coredns          (cluster DNS)
#   registry   -> registry         (the OCI registry the node pulls from)
#   pause      -> pause            (the sandbox image's only file)
#   kube-router -> kube-router     (its network policy controller alone enforces the
#                 NetworkPolicies; v2.1.0, the one version the module proxy serves:
#                 a test engine on an isolated node, never a production one)
#   crossplane-core -> crossplane-stamped (Crossplane core with its version stamped:
#                 the package manager refuses packages when the version is empty)
#
# Each binary is cached outside the clone ($BSLS_TOOLS_CACHE, default
# ~/.cache/function-bsls/tools) under a name carrying a digest of what it is built from
# (go.mod, go.sum, the wrapper's Go files and the link flags), then linked into
# .tools/bin. A second run, or a fresh clone on the same machine, takes a second.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${BSLS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/function-bsls/tools}
bin="$root/.tools/bin"
mkdir -p "$cache" "$bin"

CROSSPLANE_VERSION=v2.2.1
# The version the Kubernetes components report (node status, /version), as a release
# build stamps it; without it they say v0.0.0-master.
KUBE_VERSION=v1.35.4
KUBE_LDFLAGS=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  KUBE_LDFLAGS="$KUBE_LDFLAGS -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=35 -X $pkg.gitTreeState=clean"
done
CROSSPLANE_LDFLAGS="-X github.com/crossplane/crossplane/v2/internal/version.version=$CROSSPLANE_VERSION"

# digest DIR EXTRA: what a wrapper module builds from, plus EXTRA (flags), in 16 hex.
digest() {
  dir=$1
  extra=$2
  {
    cat "$dir/go.mod"
    if [ -f "$dir/go.sum" ]; then cat "$dir/go.sum"; fi
    cat "$dir"/*.go
    printf '%s\n' "$extra"
  } | sha256sum | cut -c1-16
}

# build DIR LDFLAGS NAME=PACKAGE...: build every PACKAGE of the wrapper module DIR in one
# go invocation (they share most packages) unless each NAME is cached already.
build() {
  module=$1
  dir="$root/tools/$module"
  ldflags=$2
  shift 2
  version=$(digest "$dir" "$ldflags")
  missing=""
  packages=""
  for pair in "$@"; do
    name=${pair%%=*}
    package=${pair#*=}
    if [ ! -x "$cache/$name-$version" ]; then
      missing="$missing $name"
      packages="$packages $package"
    fi
  done
  if [ -n "$missing" ]; then
    echo "building$missing (tools/$module, digest $version); the first build takes minutes"
    out=$(mktemp -d "$cache/.build-XXXXXX")
    # shellcheck disable=SC2086 # $packages is a list of package paths
    (cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w $ldflags" -o "$out/" $packages)
    for pair in "$@"; do
      name=${pair%%=*}
      package=${pair#*=}
      built="$out/$(basename "$package")"
      if [ -f "$built" ]; then
        mv "$built" "$cache/$name-$version"
      fi
    done
    rm -rf "$out"
  fi
  for pair in "$@"; do
    name=${pair%%=*}
    ln -sf "$cache/$name-$version" "$bin/$name"
  done
}

want() {
  for w in $selected; do
    [ "$w" = "$1" ] && return 0
  done
  return 1
}

selected="$*"
if [ -z "$selected" ] || want kube-node; then
  build kube-node "$KUBE_LDFLAGS" \
    kubelet=k8s.io/kubernetes/cmd/kubelet \
    kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
    kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler \
    kube-proxy=k8s.io/kubernetes/cmd/kube-proxy \
    kubectl=k8s.io/kubernetes/cmd/kubectl
fi
if [ -z "$selected" ] || want coredns; then
  build coredns "" coredns=github.com/coredns/coredns
fi
if [ -z "$selected" ] || want registry; then
  build registry "" registry=github.com/distribution/distribution/v3/cmd/registry
fi
if [ -z "$selected" ] || want pause; then
  build pause "" pause=bsls.dev/tools/pause
fi
if [ -z "$selected" ] || want kube-router; then
  build kube-router "" kube-router=github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
fi
if [ -z "$selected" ] || want crossplane-stamped; then
  build crossplane-core "$CROSSPLANE_LDFLAGS" \
    crossplane-stamped=github.com/crossplane/crossplane/v2/cmd/crossplane
fi
echo "node tools ready in $bin"
