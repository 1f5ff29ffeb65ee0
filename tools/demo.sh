#!/usr/bin/env bash
# The demo: real Keystone + Prometheus (tools/stack.sh), aetos built and
# started on the catalog's metric-storage endpoint, then queries through the
# real `openstack metric` CLI as an admin and as a project reader.
#
#   tools/demo.sh          bring everything up and query
#   tools/demo.sh stop     stop aetos and the stack
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export AETOS_STACK_DIR=${AETOS_STACK_DIR:-$root/.stack}
state=$AETOS_STACK_DIR/aetos
pidfile=$state/aetos-api.pid

stop_aetos() {
  if [[ -f $pidfile ]]; then
    local pid
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do
        stat=$(ps -o stat= -p "$pid" 2>/dev/null || true)
        [[ -z $stat || $stat == Z* ]] && break
        sleep 0.1
      done
    fi
    rm -f "$pidfile"
  fi
}

if [[ ${1:-} == stop ]]; then
  stop_aetos
  "$root/tools/stack.sh" stop
  exit 0
fi

command -v cargo >/dev/null || { echo "demo: cargo is required" >&2; exit 1; }
"$root/tools/stack.sh" start
env_json=$AETOS_STACK_DIR/env.json
jqr() { jq -r "$1" "$env_json"; }

echo "demo: building aetos-api (release)"
(cd "$root" && cargo build --quiet --release --bin aetos-api)

aetos_url=$(jqr .aetos_url)
port=$(python3 -c 'import sys,urllib.parse as u; print(u.urlparse(sys.argv[1]).port or 80)' "$aetos_url")
mkdir -p "$state"
"$root/tools/aetos-conf.sh" "$port" > "$state/aetos.conf"

stop_aetos
echo "demo: starting aetos-api on $aetos_url"
"$root/target/release/aetos-api" --config-file "$state/aetos.conf" >"$state/aetos-api.log" 2>&1 &
echo $! > "$pidfile"
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/healthcheck" >/dev/null && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$port/healthcheck" >/dev/null \
  || { echo "demo: aetos-api did not start:" >&2; tail -20 "$state/aetos-api.log" >&2; exit 1; }

venv=$(jqr .venv_bin)
os() {
  env -u OS_AUTH_URL -u OS_USERNAME -u OS_PASSWORD -u OS_PROJECT_NAME -u OS_TOKEN -u OS_CLOUD \
    OS_CLIENT_CONFIG_FILE="$(jqr .clouds_yaml)" "$venv/openstack" "$@"
}
echo
echo "\$ openstack --os-cloud admin catalog show metric-storage -c endpoints"
os --os-cloud admin catalog show metric-storage -c endpoints
echo
echo "\$ openstack --os-cloud admin metric query up          # privileged: every series"
os --os-cloud admin metric query up
echo
echo "\$ openstack --os-cloud demo-reader metric query ceilometer_cpu   # scoped: only project demo"
os --os-cloud demo-reader metric query ceilometer_cpu
echo
echo "demo: aetos-api is running (log: $state/aetos-api.log); stop everything with: tools/demo.sh stop"
