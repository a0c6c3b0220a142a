#!/usr/bin/env bash
# Fuzzes egate's host code: runs every cargo-fuzz target in fuzz/ for
# SECONDS each (default 60), one after another, after replaying the saved
# reproducers in fuzz/regressions/. Prints one line per target (executions,
# exec/s, corpus size, result) and exits non-zero when any target failed.
#
#   scripts/fuzz.sh            # 60 s per target
#   scripts/fuzz.sh 600        # 10 min per target
#   FUZZ_TARGETS="manifest json_patch" scripts/fuzz.sh 30
#
# Environment:
#   FUZZ_TARGETS    the targets to run (default: every one, `cargo fuzz list`)
#   FUZZ_SANITIZER  none (default) or address. `none` builds on the stable
#                   toolchain as it is; a sanitizer needs rustc's -Zsanitizer,
#                   so the script then sets RUSTC_BOOTSTRAP=1.
#   FUZZ_JOBS       libFuzzer worker processes per target (default 1; the
#                   project's machines have 2 cores, shared)
#   FUZZ_KEEP_GOING 1: go on after a crash (libFuzzer -fork -ignore_crashes),
#                   to collect every distinct finding in fuzz/artifacts/
#
# Not part of `make test` or CI: it takes minutes. The corpus grows in
# fuzz/corpus/TARGET (not committed); crashes land in fuzz/artifacts/TARGET.
# See "Fuzzing" in docs/security.md.
set -euo pipefail

seconds="${1:-60}"
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || { echo "usage: scripts/fuzz.sh [SECONDS]  (a positive whole number)" >&2; exit 2; }
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
sanitizer="${FUZZ_SANITIZER:-none}"
jobs="${FUZZ_JOBS:-1}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked
fi
# cargo-fuzz's default target dir is fuzz/target; a sanitized build gets
# its own, so switching does not rebuild everything.
fuzz_opts=(--sanitizer "$sanitizer")
if [[ "$sanitizer" != none ]]; then
  # cargo-fuzz passes -Zsanitizer=...: nightly-only, so let the stable
  # toolchain accept it. Without a sanitizer every flag it passes is stable.
  export RUSTC_BOOTSTRAP=1
  fuzz_opts+=(--target-dir "fuzz/target-$sanitizer")
fi

# egate-engine embeds target/builtin/*.wasm; admission_review_full and
# json_patch run the built-in `privileged` guest.
echo "== building the built-in policy modules (scripts/build-guests.sh)"
scripts/build-guests.sh

echo "== building the fuzz targets (sanitizer: $sanitizer)"
cargo fuzz build "${fuzz_opts[@]}"

# Seed corpora: the sample requests and policies, plus fuzz/seeds/TARGET.
seed() {
  local target="$1"; shift
  local dir="fuzz/corpus/$target" file
  mkdir -p "$dir"
  for file in "$@"; do
    [[ -f "$file" ]] && cp -f "$file" "$dir/seed-$(basename "$(dirname "$file")")-$(basename "$file")"
  done
  return 0
}
seed admission_review examples/requests/*.json fuzz/seeds/admission_review/*
seed admission_review_full examples/requests/*.json fuzz/seeds/admission_review/*
seed manifest policies/*/policy.yaml policies/*.yaml examples/policies/*.yaml
seed guest_output fuzz/seeds/guest_output/*
seed json_patch

dict_for() {
  case "$1" in
    manifest) echo fuzz/dicts/yaml.dict ;;
    json_patch) echo "" ;;
    *) echo fuzz/dicts/json.dict ;;
  esac
}

if [[ -n "${FUZZ_TARGETS:-}" ]]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  mapfile -t targets < <(cargo fuzz list)
fi

failed=()
summary=()
logs="fuzz/logs"
mkdir -p "$logs"
for target in "${targets[@]}"; do
  # Reproducers of past findings must pass before new fuzzing counts.
  regressions="fuzz/regressions/$target"
  if compgen -G "$regressions/*" >/dev/null; then
    echo "== $target: replaying $regressions"
    if ! cargo fuzz run "${fuzz_opts[@]}" "$target" "$regressions"/* -- -runs=1 >"$logs/$target-regressions.log" 2>&1; then
      echo "   a reproducer in $regressions still fails: see $logs/$target-regressions.log"
      failed+=("$target (regressions)")
    fi
  fi

  echo "== $target: fuzzing for $seconds s"
  dict="$(dict_for "$target")"
  args=(-max_total_time="$seconds" -timeout=20 -print_final_stats=1)
  [[ -n "$dict" ]] && args+=(-dict="$dict")
  if [[ "${FUZZ_KEEP_GOING:-0}" == 1 ]]; then
    args+=(-fork="$jobs" -ignore_crashes=1)
  elif [[ "$jobs" -gt 1 ]]; then
    args+=(-fork="$jobs")
  fi
  log="$logs/$target.log"
  # (No artifacts directory yet is no finding: `|| true` keeps pipefail quiet.)
  findings() { { find "fuzz/artifacts/$target" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \) 2>/dev/null || true; } | wc -l; }
  before="$(findings)"
  started=$SECONDS
  # Fork mode's exit status does not always reflect crashes: count artifacts too.
  if cargo fuzz run "${fuzz_opts[@]}" "$target" -- "${args[@]}" >"$log" 2>&1 && [[ "$(findings)" == "$before" ]]; then
    result=ok
  else
    result="FAILED: $(( $(findings) - before )) new input(s) in fuzz/artifacts/$target/, see $log"
    failed+=("$target")
    grep -E "panicked at" -A1 "$log" | head -20 || true
  fi
  elapsed=$((SECONDS - started))
  # -print_final_stats gives stat:: lines; fork mode only progress lines.
  execs="$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1 || true)"
  [[ -n "$execs" ]] || execs="$(grep -Eo '^#[0-9]+' "$log" | tr -d '#' | tail -1 || true)"
  rate="$(grep -Eo 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1 || true)"
  [[ -n "$rate" && "$rate" != 0 ]] || rate="$(( ${execs:-0} / (elapsed > 0 ? elapsed : 1) ))"
  corpus="$(find "fuzz/corpus/$target" -type f | wc -l)"
  summary+=("$(printf '%-22s %6ss %12s %10s %8s  %s' "$target" "$elapsed" "${execs:-?}" "${rate:-?}" "$corpus" "$result")")
done

echo
echo "== summary ($(nproc) cores, $seconds s per target, sanitizer: $sanitizer)"
printf '%-22s %7s %12s %10s %8s  %s\n' target time executions 'exec/s' corpus result
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
