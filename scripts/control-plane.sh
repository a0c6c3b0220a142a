#!/usr/bin/env bash
# A real Kubernetes control plane on loopback for egate's end-to-end tests:
# etcd and kube-apiserver, no kubelet, no controller manager (admission happens
# entirely in the API server, as in envtest).
#
#   scripts/control-plane.sh up     build the binaries once, start etcd and kube-apiserver
#   scripts/control-plane.sh env    print KUBECONFIG=..., the audit log and the rest, one KEY=VALUE a line
#   scripts/control-plane.sh down   stop both and remove their data
#   scripts/control-plane.sh build  only build the binaries (CI does it first); prints their directory
#
# Binaries: $KUBEBUILDER_ASSETS/{etcd,kube-apiserver,kubectl} when that is set
# (setup-envtest's convention); otherwise built from tests/control-plane/go.mod
# into target/control-plane/VERSION/ on first use and reused after.
#
# Users (static tokens; one kubeconfig context each): admin (system:masters),
# alice (sre), bob (dev), carol (approvers), and the service account egate-system/egate.
#
# State: $EGATE_CONTROL_PLANE_DIR, default target/control-plane/run.
# Ports: free ones, unless EGATE_APISERVER_PORT / EGATE_ETCD_PORT name them.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
module_dir="$root/tests/control-plane"
state_dir="${EGATE_CONTROL_PLANE_DIR:-$root/target/control-plane/run}"

die() {
  echo "control-plane: $*" >&2
  exit 1
}

say() { echo "control-plane: $*" >&2; }

# The Kubernetes release the module pins, as in `k8s.io/kubernetes v1.37.2`.
pinned_version() {
  awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$module_dir/go.mod"
}

bin_dir() {
  if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
    echo "$KUBEBUILDER_ASSETS"
  else
    echo "$root/target/control-plane/$(pinned_version)"
  fi
}

need_tool() {
  command -v "$1" >/dev/null || die "$1 is not installed: $2"
}

# Builds kube-apiserver, kubectl and etcd from their Go modules, once.
ensure_binaries() {
  local dir
  dir="$(bin_dir)"
  if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
    for bin in etcd kube-apiserver kubectl; do
      [[ -x "$dir/$bin" ]] || die "KUBEBUILDER_ASSETS=$dir has no executable $bin: point it at setup-envtest's assets, or unset it to build from tests/control-plane"
    done
    return
  fi
  if [[ -x "$dir/etcd" && -x "$dir/kube-apiserver" && -x "$dir/kubectl" ]]; then
    return
  fi
  need_tool go "install Go (https://go.dev/doc/install, or Debian's golang-go) or set KUBEBUILDER_ASSETS to setup-envtest's binaries"
  say "building kube-apiserver, kubectl and etcd $(pinned_version) into $dir (once; several minutes on 2 cores)"
  mkdir -p "$dir.tmp"
  # The version stamps Kubernetes' own build sets (hack/lib/version.sh):
  # without them the binaries say v0.0.0-master.
  local version minor ldflags="-s -w" pkg
  version="$(pinned_version)"
  minor="${version#v1.}"
  minor="${minor%%.*}"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  if ! (cd "$module_dir" && go build -trimpath -ldflags "$ldflags" -o "$dir.tmp/" \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl ./etcd); then
    rm -rf "$dir.tmp"
    die "building the control plane from $module_dir failed (see go's message above); check that the Go module proxy is reachable"
  fi
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port_is_busy() {
  python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)
EOF
}

choose_port() {
  local name="$1" wanted="$2"
  if [[ -n "$wanted" ]]; then
    if port_is_busy "$wanted"; then
      die "port $wanted ($name) is busy on 127.0.0.1: free it (ss -ltnp 'sport = :$wanted' shows who holds it) or unset the variable to take a free port"
    fi
    echo "$wanted"
  else
    free_port
  fi
}

# A CA, the API server's serving certificate for 127.0.0.1, egate's serving
# certificate for 127.0.0.1 (the webhook the API server calls), and the
# service-account signing key.
make_pki() {
  local pki="$state_dir/pki"
  mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=egate-e2e-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    for name in apiserver webhook; do
      openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" -keyout "$name.key" -out "$name.csr" 2>/dev/null
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$name.ext"
      openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile "$name.ext" -out "$name.crt" 2>/dev/null
      rm -f "$name.csr" "$name.ext"
    done
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
}

make_auth() {
  cat >"$state_dir/tokens.csv" <<'EOF'
admin-token,admin,admin-uid,"system:masters"
alice-token,alice,alice-uid,"sre"
bob-token,bob,bob-uid,"dev"
carol-token,carol,carol-uid,"approvers"
egate-token,system:serviceaccount:egate-system:egate,egate-sa-uid,"system:serviceaccounts,system:serviceaccounts:egate-system"
EOF
  cat >"$state_dir/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  # kubectl debug: the whole request and response, with egate's audit annotations.
  - level: RequestResponse
    resources:
      - group: ""
        resources: [pods/ephemeralcontainers]
  - level: Metadata
    resources:
      - group: ""
        resources: [pods]
  - level: None
EOF
}

make_kubeconfig() {
  local server="https://127.0.0.1:$1" file="$state_dir/kubeconfig"
  {
    echo "apiVersion: v1"
    echo "kind: Config"
    echo "clusters:"
    echo "  - name: e2e"
    echo "    cluster:"
    echo "      server: $server"
    echo "      certificate-authority: $state_dir/pki/ca.crt"
    echo "users:"
    for user in admin alice bob carol egate; do
      echo "  - name: $user"
      echo "    user:"
      echo "      token: $user-token"
    done
    echo "contexts:"
    for user in admin alice bob carol egate; do
      echo "  - name: $user"
      echo "    context:"
      echo "      cluster: e2e"
      echo "      user: $user"
    done
    echo "current-context: admin"
  } >"$file"
}

pid_alive() {
  [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

# Waits until URL answers 200, or the process of PIDFILE dies, or 60s pass.
wait_healthy() {
  local what="$1" url="$2" pidfile="$3" log="$4"
  shift 4
  for _ in $(seq 1 240); do
    if ! pid_alive "$pidfile"; then
      tail -n 20 "$log" >&2 || true
      die "$what exited while starting; its log is $log (last lines above)"
    fi
    if curl -fsS -o /dev/null "$@" "$url" 2>/dev/null; then
      return
    fi
    sleep 0.25
  done
  tail -n 20 "$log" >&2 || true
  die "$what did not become healthy at $url within 60s; its log is $log"
}

start_etcd() {
  local client_port="$1" peer_port="$2" dir
  dir="$(bin_dir)"
  setsid "$dir/etcd" \
    --name e2e \
    --data-dir "$state_dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$client_port" \
    --advertise-client-urls "http://127.0.0.1:$client_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "e2e=http://127.0.0.1:$peer_port" \
    --unsafe-no-fsync \
    >"$state_dir/etcd.log" 2>&1 </dev/null &
  echo $! >"$state_dir/etcd.pid"
  wait_healthy etcd "http://127.0.0.1:$client_port/health" "$state_dir/etcd.pid" "$state_dir/etcd.log"
}

start_apiserver() {
  local port="$1" etcd_port="$2" dir pki="$state_dir/pki"
  dir="$(bin_dir)"
  # --allow-privileged: the API server itself would refuse privileged
  # containers otherwise, and egate's policies are what is under test.
  setsid "$dir/kube-apiserver" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --endpoint-reconciler-type=none \
    --secure-port="$port" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --tls-cert-file="$pki/apiserver.crt" \
    --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --token-auth-file="$state_dir/tokens.csv" \
    --authorization-mode=Node,RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" \
    --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 \
    --allow-privileged=true \
    --audit-policy-file="$state_dir/audit-policy.yaml" \
    --audit-log-path="$state_dir/audit.log" \
    --audit-log-format=json \
    --audit-log-mode=blocking \
    >"$state_dir/kube-apiserver.log" 2>&1 </dev/null &
  echo $! >"$state_dir/kube-apiserver.pid"
  wait_healthy kube-apiserver "https://127.0.0.1:$port/readyz" "$state_dir/kube-apiserver.pid" \
    "$state_dir/kube-apiserver.log" --cacert "$pki/ca.crt" -H "Authorization: Bearer admin-token"
}

stop_pidfile() {
  local pidfile="$1"
  [[ -f "$pidfile" ]] || return 0
  local pid
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

print_env() {
  [[ -f "$state_dir/env" ]] || die "no control plane is up in $state_dir: run scripts/control-plane.sh up"
  cat "$state_dir/env"
}

cmd_up() {
  if pid_alive "$state_dir/kube-apiserver.pid" && pid_alive "$state_dir/etcd.pid" && [[ -f "$state_dir/env" ]]; then
    say "already up ($state_dir)"
    print_env
    return
  fi
  cmd_down 2>/dev/null
  need_tool openssl "apt-get install openssl"
  need_tool curl "apt-get install curl"
  need_tool python3 "apt-get install python3 (used to find free ports)"
  ensure_binaries
  mkdir -p "$state_dir"
  # Whatever fails from here on leaves nothing running (the logs stay, for
  # the message to point at).
  trap 'stop_processes' EXIT
  local etcd_port peer_port api_port
  etcd_port="$(choose_port EGATE_ETCD_PORT "${EGATE_ETCD_PORT:-}")"
  peer_port="$(free_port)"
  api_port="$(choose_port EGATE_APISERVER_PORT "${EGATE_APISERVER_PORT:-}")"
  make_pki
  make_auth
  make_kubeconfig "$api_port"
  start_etcd "$etcd_port" "$peer_port"
  start_apiserver "$api_port" "$etcd_port"
  trap - EXIT
  local dir
  dir="$(bin_dir)"
  cat >"$state_dir/env" <<EOF
KUBECONFIG=$state_dir/kubeconfig
EGATE_AUDIT_LOG=$state_dir/audit.log
EGATE_APISERVER=https://127.0.0.1:$api_port
EGATE_CA_CERT=$state_dir/pki/ca.crt
EGATE_CA_KEY=$state_dir/pki/ca.key
EGATE_WEBHOOK_CERT=$state_dir/pki/webhook.crt
EGATE_WEBHOOK_KEY=$state_dir/pki/webhook.key
EGATE_KUBECTL=$dir/kubectl
EGATE_KUBERNETES_VERSION=$(pinned_version)
EGATE_CONTROL_PLANE_DIR=$state_dir
EOF
  say "up: kube-apiserver https://127.0.0.1:$api_port, etcd 127.0.0.1:$etcd_port ($state_dir)"
  print_env
}

stop_processes() {
  stop_pidfile "$state_dir/kube-apiserver.pid"
  stop_pidfile "$state_dir/etcd.pid"
  rm -rf "$state_dir/etcd" "$state_dir/env"
}

cmd_down() {
  stop_processes
  rm -rf "$state_dir"
}

case "${1:-}" in
  up) cmd_up ;;
  env) print_env ;;
  down) cmd_down; say "down" ;;
  build) ensure_binaries; bin_dir ;;
  *)
    echo "usage: scripts/control-plane.sh up|env|down (or build)" >&2
    exit 2
    ;;
esac
