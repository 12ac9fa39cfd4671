#!/usr/bin/env bash
# Builds etcd, kube-apiserver and kube-controller-manager from the versions pinned in go.mod
# into target/controlplane/bin. A no-op when that directory already holds binaries built from
# this exact go.mod, go.sum and script (the stamp records their hash).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="${CONTROLPLANE_BIN:-$root/target/controlplane/bin}"

k8s_version=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$here/go.mod")
etcd_version=$(awk '$1 == "go.etcd.io/etcd/server/v3" && $2 ~ /^v/ {print $2; exit}' "$here/go.mod")
stamp=$(cat "$here/go.mod" "$here/go.sum" "$0" | sha256sum | cut -d' ' -f1)

if [[ -f "$out/.stamp" && "$(cat "$out/.stamp")" == "$stamp" ]] &&
  [[ -x "$out/etcd" && -x "$out/kube-apiserver" && -x "$out/kube-controller-manager" ]]; then
  exit 0
fi

command -v go >/dev/null || { echo "controlplane: Go is needed to build the control plane (https://go.dev/dl)" >&2; exit 1; }

echo "controlplane: building kube-apiserver and kube-controller-manager $k8s_version and etcd $etcd_version"
echo "controlplane: from Go modules into $out (first run only: about 5 minutes on 2 cores, plus module downloads)"
mkdir -p "$out"
rm -f "$out/.stamp"

minor=${k8s_version#v*.}
minor=${minor%%.*}
pkg=k8s.io/component-base/version
ldflags="-s -w \
  -X $pkg.gitVersion=$k8s_version \
  -X $pkg.gitMajor=1 \
  -X $pkg.gitMinor=$minor \
  -X $pkg.gitTreeState=clean \
  -X $pkg.buildDate=1970-01-01T00:00:00Z"

cd "$here"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
start=$SECONDS
for target in \
  "etcd go.etcd.io/etcd/server/v3" \
  "kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver" \
  "kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager"; do
  set -- $target
  echo "controlplane: go build $2"
  go build -trimpath -ldflags "$ldflags" -o "$out/$1.tmp" "$2"
  mv "$out/$1.tmp" "$out/$1"
done
echo "$stamp" >"$out/.stamp"
echo "controlplane: built in $((SECONDS - start)) s"
