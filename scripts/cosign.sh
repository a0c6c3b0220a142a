#!/usr/bin/env bash
# The real cosign, for egate's signature tests (tests/oci.rs): built once
# from its Go module (tests/cosign/go.mod) into target/cosign/VERSION/.
#
#   scripts/cosign.sh build   build it when missing; print the binary's path
#   scripts/cosign.sh path    print the binary's path (built or not)
#
# $EGATE_COSIGN names a cosign binary to use instead (then nothing is built).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
module_dir="$root/tests/cosign"

die() {
  echo "cosign.sh: $*" >&2
  exit 1
}

# The release the module pins, as in `github.com/sigstore/cosign/v2 v2.6.5`.
pinned_version() {
  awk '$1 == "require" && $2 == "github.com/sigstore/cosign/v2" { print $3; exit }' "$module_dir/go.mod"
}

binary() {
  if [[ -n "${EGATE_COSIGN:-}" ]]; then
    echo "$EGATE_COSIGN"
  else
    echo "${CARGO_TARGET_DIR:-$root/target}/cosign/$(pinned_version)/cosign"
  fi
}

build() {
  local bin dir version
  bin="$(binary)"
  if [[ -x "$bin" ]]; then
    echo "$bin"
    return
  fi
  [[ -z "${EGATE_COSIGN:-}" ]] || die "EGATE_COSIGN=$EGATE_COSIGN is not an executable: point it at cosign, or unset it to build from tests/cosign"
  command -v go >/dev/null || die "go is not installed: install Go (https://go.dev/doc/install, or Debian's golang-go), or set EGATE_COSIGN to a cosign binary"
  dir="$(dirname "$bin")"
  version="$(pinned_version)"
  echo "cosign.sh: building cosign $version into $dir (once; a few minutes on 2 cores)" >&2
  mkdir -p "$dir.tmp"
  if ! (cd "$module_dir" && go build -trimpath \
        -ldflags "-s -w -X sigs.k8s.io/release-utils/version.gitVersion=$version" \
        -o "$dir.tmp/" github.com/sigstore/cosign/v2/cmd/cosign); then
    rm -rf "$dir.tmp"
    die "building cosign from $module_dir failed (see go's message above); check that the Go module proxy is reachable"
  fi
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
  echo "$bin"
}

case "${1:-}" in
  build) build ;;
  path) binary ;;
  *) die "usage: scripts/cosign.sh build|path" ;;
esac
