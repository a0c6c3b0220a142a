#!/usr/bin/env bash
# A policy that runs into its deadline under load (docs/security.md): egate
# serve judges the default set plus `loop` (scripts/fixtures/loop.wasm, an
# endless loop, timeoutMs 50, failurePolicy Ignore) that matches only the
# namespace `slow`. wrk sends ordinary kubectl debug requests for SECONDS
# (default 20), first alone, then while a second wrk keeps SLOW (default 1)
# requests for namespace `slow` in flight. Prints both latency
# distributions; fails if any request did not get a 2xx answer.
# WORKERS sets `egate serve --workers` (default: egate's own default).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-20}"
slow="${SLOW:-1}"
port="${PORT:-18644}"
name=slowtest
cd "$root"
source scripts/serve-under-load.sh
certificate

cp scripts/fixtures/loop.wasm "$work/loop.wasm"
{ cat policies/default.yaml; cat <<'YAML'
---
apiVersion: egate.dev/v1
kind: ClusterPolicy
metadata: {name: loop}
spec:
  failurePolicy: Ignore
  timeoutMs: 50
  match: {resources: [pods/ephemeralcontainers], namespaces: [slow]}
  module: loop.wasm
YAML
} >"$work/policies.yaml"
request request
request slow slow
start_server ${WORKERS:+--workers "$WORKERS"}

url="https://127.0.0.1:$port/validate"
echo "== ordinary requests alone"
wrk -t1 -c4 -d"${seconds}s" --latency -s "$work/request.lua" "$url" | tee "$work/alone.txt" | grep -E "50%|90%|99%|Requests/sec"
echo "== ordinary requests while $slow request(s) for namespace slow run into the 50 ms deadline"
wrk -t1 -c"$slow" -d"$((seconds + 2))s" --latency -s "$work/slow.lua" "$url" >"$work/slow.txt" &
slow_load=$!
sleep 1
wrk -t1 -c4 -d"${seconds}s" --latency -s "$work/request.lua" "$url" | tee "$work/mixed.txt" | grep -E "50%|90%|99%|Requests/sec"
wait "$slow_load"
echo "== the slow requests"
grep -E "50%|99%|Requests/sec" "$work/slow.txt"
if grep -qE "Non-2xx|Socket errors" "$work/alone.txt" "$work/mixed.txt" "$work/slow.txt"; then
  echo "slowtest: FAILED: some requests did not get a 2xx answer" >&2
  exit 1
fi
