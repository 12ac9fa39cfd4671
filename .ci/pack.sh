#!/usr/bin/env bash
# Packs one release archive the way krew installs it: the binary and LICENSE at the top level,
# .tar.gz (.zip for windows), reproducibly, with <archive>.sha256 beside it. The one naming
# scheme of `make dist`, the release workflow and the krew manifest:
#
#   kubectl-onboard_<version>_<os>_<arch>.tar.gz|.zip
#
#   .ci/pack.sh BINARY OS ARCH [OUT_DIR]     OS: linux, darwin, windows; ARCH: amd64, arm64
#
# Runs on Linux (GNU tar); the release workflow packs every platform's binary in one Linux job.
set -euo pipefail

[[ $# -ge 3 ]] || { echo "usage: .ci/pack.sh BINARY OS ARCH [OUT_DIR]" >&2; exit 2; }
binary=$1 os=$2 arch=$3 out=${4:-dist}
root=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)
case "$os/$arch" in
  linux/amd64 | linux/arm64 | darwin/amd64 | darwin/arm64 | windows/amd64) ;;
  *) echo "pack: no release for $os/$arch" >&2; exit 2 ;;
esac
[[ -f "$binary" ]] || { echo "pack: $binary does not exist" >&2; exit 1; }

name=kubectl-onboard
[[ $os == windows ]] && name=kubectl-onboard.exe
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$binary" "$stage/$name"
cp "$root/LICENSE" "$stage/LICENSE"
chmod 0755 "$stage/$name"
chmod 0644 "$stage/LICENSE"
mkdir -p "$out"

base=kubectl-onboard_${version}_${os}_${arch}
if [[ $os == windows ]]; then
  archive=$base.zip
  # Fixed timestamps and modes: the same binary gives the same archive.
  python3 - "$out/$archive" "$stage/$name" "$stage/LICENSE" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    for path in sys.argv[2:]:
        info = zipfile.ZipInfo(os.path.basename(path), date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = (os.stat(path).st_mode & 0o777) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(path, "rb") as f:
            z.writestr(info, f.read())
PY
else
  archive=$base.tar.gz
  tar -C "$stage" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - "$name" LICENSE |
    gzip -n -9 >"$out/$archive"
fi
(cd "$out" && sha256sum "$archive" >"$archive.sha256")
echo "$out/$archive ($(du -h "$out/$archive" | cut -f1)), sha256 $(cut -d' ' -f1 "$out/$archive.sha256")"
