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
command -v wrk >/dev/null || { echo "slowtest: wrk is missing: apt-get install -y wrk" >&2; exit 2; }
command -v openssl >/dev/null || { echo "slowtest: openssl is missing: apt-get install -y openssl" >&2; exit 2; }

cd "$root"
cargo build --quiet --release --bin egate
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

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
python3 - "$work" <<'PY'
import json, sys
review = json.load(open("examples/requests/debug-allowed.json"))
for c in review["request"]["object"]["spec"]["ephemeralContainers"]:
    c.pop("targetContainerName", None)
json.dump(review, open(sys.argv[1] + "/request.json", "w"), separators=(",", ":"))
review["request"]["namespace"] = "slow"
json.dump(review, open(sys.argv[1] + "/slow.json", "w"), separators=(",", ":"))
PY
for kind in request slow; do
  cat > "$work/$kind.lua" <<LUA
local f = io.open("$work/$kind.json", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA
done

target/release/egate serve --policies "$work/policies.yaml" --addr "127.0.0.1:$port" \
  --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" --log-level warn ${WORKERS:+--workers "$WORKERS"} \
  >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 200); do curl -skf "https://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.05; done

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
