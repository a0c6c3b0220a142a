#!/usr/bin/env bash
# Load test of `egate serve` on loopback (docs/security.md, docs/performance.md):
# wrk POSTs a kubectl debug AdmissionReview to /validate (ENDPOINT=mutate for
# /mutate) over TLS with keep-alive for SECONDS (default 60) while the
# policy set is reloaded twice (file change, then SIGHUP) and the
# certificate is rotated. It fails unless every request got a 2xx answer.
# Needs wrk and openssl (Debian packages); builds target/release/egate
# first (scripts/serve-under-load.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-60}"
connections="${CONNECTIONS:-4}"
port="${PORT:-18643}"
endpoint="${ENDPOINT:-validate}"  # or mutate
name=loadtest
cd "$root"
source scripts/serve-under-load.sh
certificate
cp policies/default.yaml "$work/policies.yaml"
request request
start_server

wrk -t1 -c"$connections" -d"${seconds}s" --latency -s "$work/request.lua" "https://127.0.0.1:$port/$endpoint" >"$work/wrk.txt" &
load=$!
sleep $((seconds / 4)); echo "# $(date +%T) policy file changed" >>"$work/policies.yaml"
sleep $((seconds / 4)); kill -HUP "$server"
sleep $((seconds / 4)); certificate
wait "$load"

cat "$work/wrk.txt"
curl -sk "https://127.0.0.1:$port/metrics" | grep -E '^egate_reloads_total' || true
if grep -qE "Non-2xx|Socket errors" "$work/wrk.txt"; then
  echo "loadtest: FAILED: some requests did not get a 2xx answer" >&2
  exit 1
fi
echo "loadtest: every request answered 2xx through two policy reloads and a certificate rotation"
