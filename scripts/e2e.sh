#!/usr/bin/env bash
# The end-to-end tests (tests/e2e/): starts a control plane
# (scripts/control-plane.sh up), runs the scenarios one at a time, and stops
# it again however they end. Arguments go to the test binary, e.g.
#   scripts/e2e.sh profiles        # only the scenarios whose name holds "profiles"
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo="${CARGO:-cargo}"

# Compile first, so the control plane is up only while tests run.
"$cargo" test --test e2e --no-run --quiet

# A control plane of this run's own, removed on any exit.
export EGATE_CONTROL_PLANE_DIR="$root/target/control-plane/e2e-$$"
trap 'scripts/control-plane.sh down' EXIT
scripts/control-plane.sh up >/dev/null
"$cargo" test --test e2e -- --ignored --test-threads=1 "$@"
