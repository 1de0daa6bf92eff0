#!/bin/sh
# Builds the pinned test tools into .tools/bin from the wrapper modules in tools/.
#
# Each tool is built once per version into a cache outside the clone
# ($BSLS_TOOLS_CACHE, default ~/.cache/function-bsls/tools), then linked into .tools/bin,
# so a fresh clone on the same machine gets them in seconds.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${BSLS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/function-bsls/tools}
bin="$root/.tools/bin"
mkdir -p "$cache" "$bin"

# build NAME PACKAGE: NAME is a folder under tools/ whose go.mod pins the version.
build() {
  name=$1
  package=$2
  dir="$root/tools/$name"
  # The digest of the contents only: the same in every clone, wherever it lives.
  version=$(cat "$dir/go.mod" "$dir/go.sum" | sha256sum | cut -c1-16)
  target="$cache/$name-$version"
  if [ ! -x "$target" ]; then
    echo "building $name ($package, go.mod digest $version); the first build takes minutes" >&2
    (cd "$dir" && CGO_ENABLED=0 go build -trimpath -o "$target.tmp" "$package")
    mv "$target.tmp" "$target"
  fi
  ln -sf "$target" "$bin/$name"
}

# name -> package; `hack/tools.sh NAME...` builds only those (`make render` needs one).
package_of() {
  case "$1" in
    crossplane) echo github.com/crossplane/crossplane/v2/cmd/crank ;;
    kopia) echo github.com/kopia/kopia ;;
    kube-score) echo github.com/zegl/kube-score/cmd/kube-score ;;
    etcd) echo bsls.dev/tools/etcd ;;
    kube-apiserver) echo k8s.io/kubernetes/cmd/kube-apiserver ;;
    crossplane-core) echo github.com/crossplane/crossplane/v2/cmd/crossplane ;;
    *) echo "unknown tool $1" >&2; exit 2 ;;
  esac
}

if [ "$#" -eq 0 ]; then
  set -- crossplane kopia kube-score etcd kube-apiserver crossplane-core
fi
for name in "$@"; do
  build "$name" "$(package_of "$name")"
done
echo "tools ready in $bin" >&2
