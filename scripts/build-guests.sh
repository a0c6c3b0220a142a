#!/usr/bin/env bash
# Builds every policy crate in policies/ to wasm32-wasip1 and copies the
# modules to target/builtin/NAME.wasm, where egate-engine embeds them.
#
# Two ways, chosen by themselves:
#  - rustup's toolchain has the wasm32-wasip1 target: a plain cargo build;
#  - it has not (as on the project's build machines): Debian's rustc/cargo
#    build std for wasm with -Zbuild-std (../shared/WASM-TOOLCHAIN.md),
#    installing the Debian packages first when they are missing.
# Both share one target dir (target/wasm-guests), so std and dependencies
# are compiled once and reused by later builds.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target_dir="$root/target/wasm-guests"
out_dir="$root/target/builtin"
profile=guest

packages=()
# Policies that reuse another policy's code (a dependency on egate-policy-*)
# build on their own: in one build with the others, that policy's module
# exports would be compiled into them too.
reusing=()
names=()
for manifest in policies/*/Cargo.toml; do
  name="$(basename "$(dirname "$manifest")")"
  names+=("$name")
  if grep -q '^egate-policy-' "$manifest"; then
    reusing+=(-p "egate-policy-$name")
  else
    packages+=(-p "egate-policy-$name")
  fi
done

has_rustup_target() {
  local libdir
  libdir="$(rustc --print target-libdir --target wasm32-wasip1 2>/dev/null)" || return 1
  compgen -G "$libdir/libstd-*.rlib" >/dev/null
}

debian_toolchain_ready() {
  [[ -x /usr/bin/rustc && -x /usr/bin/cargo && -x /usr/bin/wasm-ld \
     && -d /usr/lib/rustlib/src/rust/library && -f /usr/lib/wasm32-wasi/libc.a ]] \
     && /usr/bin/rustc --version | grep -Eq '1\.(8[5-9]|9[0-9]|[1-9][0-9]{2})'
}

install_debian_toolchain() {
  echo "build-guests: installing Debian's rustc-web, cargo-web, rust-web-src, wasi-libc and lld (the wasm32-wasip1 recipe)" >&2
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq rustc-web cargo-web rust-web-src wasi-libc lld >/dev/null
}

# Guests start with 4 MiB of memory: a request then never grows it, and a
# memory that grew costs every evaluation two mprotect calls (with TLB
# shootdowns on every core) when its pooled slot is reset and reused.
initial_memory="-C link-arg=--initial-memory=4194304"

build() {
  if [[ $way == rustup ]]; then
    RUSTFLAGS="$initial_memory ${EGATE_GUEST_RUSTFLAGS:-}" \
    cargo build --quiet --profile "$profile" --target wasm32-wasip1 --target-dir "$target_dir" "$@"
  else
    env PATH="/usr/bin:$PATH" \
        RUSTC=/usr/bin/rustc \
        RUSTC_BOOTSTRAP=1 \
        CARGO_TARGET_WASM32_WASIP1_LINKER=wasm-ld \
        RUSTFLAGS="-C link-self-contained=no -L native=/usr/lib/wasm32-wasi $initial_memory ${EGATE_GUEST_RUSTFLAGS:-}" \
        /usr/bin/cargo build --quiet --profile "$profile" --target wasm32-wasip1 --target-dir "$target_dir" \
          -Zbuild-std=std,panic_abort "$@"
  fi
}

if has_rustup_target; then
  way=rustup
  echo "build-guests: using rustup's wasm32-wasip1 target" >&2
else
  way=debian
  debian_toolchain_ready || install_debian_toolchain
  echo "build-guests: no rustup wasm32-wasip1 target; building std with Debian's $(/usr/bin/rustc --version)" >&2
fi
# Each policy as a module of its own, then all of them bundled in one
# (library/). Two builds: bundling turns on the SDK's `bundle` feature,
# which removes each policy's own exports.
build "${packages[@]}"
((${#reusing[@]} == 0)) || build "${reusing[@]}"
build -p egate-builtin-library

cp "$target_dir/wasm32-wasip1/$profile/egate_builtin_library.wasm" "$root/target/builtin-library.wasm.tmp"
mv "$root/target/builtin-library.wasm.tmp" "$root/target/builtin-library.wasm"
echo "build-guests: $root/target/builtin-library.wasm ($(wc -c <"$root/target/builtin-library.wasm") bytes)" >&2

mkdir -p "$out_dir"
for name in "${names[@]}"; do
  module="$target_dir/wasm32-wasip1/$profile/egate_policy_${name//-/_}.wasm"
  cp "$module" "$out_dir/$name.wasm.tmp"
  mv "$out_dir/$name.wasm.tmp" "$out_dir/$name.wasm"
  echo "build-guests: $out_dir/$name.wasm ($(wc -c <"$out_dir/$name.wasm") bytes)" >&2
done
