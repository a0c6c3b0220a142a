#!/usr/bin/env bash
# Load test of `egate serve` on loopback (docs/security.md, docs/performance.md):
# wrk POSTs a kubectl debug AdmissionReview to /validate (ENDPOINT=mutate for
# /mutate) over TLS with keep-alive for SECONDS (default 60) while the
# policy set is reloaded twice
# (file change, then SIGHUP) and the certificate is rotated. It fails unless
# every request got a 2xx answer. Needs wrk and openssl (Debian packages);
# builds target/release/egate first.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-60}"
connections="${CONNECTIONS:-4}"
port="${PORT:-18643}"
endpoint="${ENDPOINT:-validate}"  # or mutate
command -v wrk >/dev/null || { echo "loadtest: wrk is missing: apt-get install -y wrk" >&2; exit 2; }
command -v openssl >/dev/null || { echo "loadtest: openssl is missing: apt-get install -y openssl" >&2; exit 2; }

cd "$root"
cargo build --quiet --release --bin egate
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

certificate() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$work/key.new" -out "$work/cert.new" 2>/dev/null
  mv "$work/key.new" "$work/key.pem" && mv "$work/cert.new" "$work/cert.pem"
}
certificate
cp policies/default.yaml "$work/policies.yaml"
# The request without --target, which the default set's `target` policy refuses.
python3 - "$work/request.json" <<'PY'
import json, sys
review = json.load(open("examples/requests/debug-allowed.json"))
for c in review["request"]["object"]["spec"]["ephemeralContainers"]:
    c.pop("targetContainerName", None)
json.dump(review, open(sys.argv[1], "w"), separators=(",", ":"))
PY
cat > "$work/post.lua" <<LUA
local f = io.open("$work/request.json", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA

target/release/egate serve --policies "$work/policies.yaml" --addr "127.0.0.1:$port" \
  --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" --log-level warn >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 200); do curl -skf "https://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.05; done

wrk -t1 -c"$connections" -d"${seconds}s" --latency -s "$work/post.lua" "https://127.0.0.1:$port/$endpoint" >"$work/wrk.txt" &
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
