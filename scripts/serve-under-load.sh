# Shared by scripts/loadtest.sh and scripts/slowtest.sh (sourced, not run):
# checks for wrk and openssl, builds egate, and gives helpers to write a
# certificate, the kubectl debug request wrk sends, and start `egate serve`.
# The caller sets `name` (for messages) and `port`, and is in the repository
# root. Sets `work` (a temp dir, removed at exit) and, once started,
# `server` (the egate pid, killed at exit).

command -v wrk >/dev/null || { echo "$name: wrk is missing: apt-get install -y wrk" >&2; exit 2; }
command -v openssl >/dev/null || { echo "$name: openssl is missing: apt-get install -y openssl" >&2; exit 2; }

cargo build --quiet --release --bin egate
work="$(mktemp -d)"
server=""
trap 'if [[ -n "$server" ]]; then kill "$server" 2>/dev/null || true; fi; rm -rf "$work"' EXIT

# A self-signed certificate for 127.0.0.1 in $work/cert.pem and key.pem,
# each replaced in one rename (egate reloads them when they change).
certificate() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$work/key.new" -out "$work/cert.new" 2>/dev/null
  mv "$work/key.new" "$work/key.pem" && mv "$work/cert.new" "$work/cert.pem"
}

# $work/NAME.json: the example kubectl debug request without --target (which
# the default set's `target` policy refuses), in NAMESPACE (default: as
# written), and $work/NAME.lua, the wrk script that POSTs it.
request() {
  local file="$1" namespace="${2:-}"
  python3 - "$work/$file.json" "$namespace" <<'PY'
import json, sys
review = json.load(open("examples/requests/debug-allowed.json"))
for c in review["request"]["object"]["spec"]["ephemeralContainers"]:
    c.pop("targetContainerName", None)
if sys.argv[2]:
    review["request"]["namespace"] = sys.argv[2]
json.dump(review, open(sys.argv[1], "w"), separators=(",", ":"))
PY
  cat > "$work/$file.lua" <<LUA
local f = io.open("$work/$file.json", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA
}

# Starts `egate serve` with $work/policies.yaml over TLS on $port, with any
# extra flags, and waits until /readyz answers.
start_server() {
  target/release/egate serve --policies "$work/policies.yaml" --addr "127.0.0.1:$port" \
    --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" --log-level warn "$@" >"$work/serve.log" 2>&1 &
  server=$!
  for _ in $(seq 200); do curl -skf "https://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.05; done
}
