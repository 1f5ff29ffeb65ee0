#!/usr/bin/env bash
# Service load benchmark on the local stack: the same query sent directly to
# Prometheus (the baseline, measured in the same run), through aetos as a
# privileged caller and through aetos as a scoped caller. Prints requests/s,
# p50 and p99 for each, and the ratios against the baseline.
#
#   tools/bench.sh [DURATION_SECONDS] [CONNECTIONS]
#
# Bounded: each run lasts DURATION seconds (default 10) against 127.0.0.1.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export AETOS_STACK_DIR=${AETOS_STACK_DIR:-$root/.stack}
duration=${1:-10}
conns=${2:-16}

if ! command -v wrk >/dev/null 2>&1; then
  echo "bench: installing wrk" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
"$root/tools/stack.sh" start >/dev/null
env_json=$AETOS_STACK_DIR/env.json
jqr() { jq -r "$1" "$env_json"; }
(cd "$root" && cargo build --quiet --release --bin aetos-api)

prom=$(jqr .prometheus_url)
ks=$(jqr .keystone_url)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
"$root/tools/aetos-conf.sh" "$port" > "$work/aetos.conf"
AETOS_LOG=warn "$root/target/release/aetos-api" --config-file "$work/aetos.conf" >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthcheck" >/dev/null && break; sleep 0.1; done

login() {
  curl -sf -D - -o /dev/null -H 'Content-Type: application/json' "$ks/auth/tokens?nocatalog" -d "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"$1\",\"domain\":{\"id\":\"default\"},\"password\":\"$(jqr ".users[\"$1\"].password")\"}}},\"scope\":{\"project\":{\"name\":\"$2\",\"domain\":{\"id\":\"default\"}}}}}" \
    | awk 'tolower($1)=="x-subject-token:" {print $2}' | tr -d '\r'
}
admin_token=$(login aetos service)
reader_token=$(login demo-reader demo)

query='sum by (project) (rate(ceilometer_cpu[5m]))'
qs="query=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$query")"

# run NAME URL [TOKEN] -> "rps p50_ms p99_ms"
run() {
  local url=$2 token=${3:-} out
  local threads=2
  ((conns < 2)) && threads=1
  local args=(-t"$threads" -c"$conns" -d"${duration}s" --latency)
  [[ -n $token ]] && args+=(-H "X-Auth-Token: $token")
  out=$(wrk "${args[@]}" "$url")
  local non2xx
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  [[ -n $non2xx ]] && { echo "bench: $1 got $non2xx non-2xx answers" >&2; exit 1; }
  awk -v name="$1" '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) } /^Requests\/sec/ { rps = $2 }
    END { printf "%s %.1f %.3f %.3f\n", name, rps, p50, p99 }' <<<"$out"
}

echo "query: $query   ($duration s per run, $conns connections)"
results=$(
  run direct-prometheus "$prom/api/v1/query?$qs"
  run aetos-privileged "http://127.0.0.1:$port/prometheus/api/v1/query?$qs" "$admin_token"
  run aetos-scoped "http://127.0.0.1:$port/prometheus/api/v1/query?$qs" "$reader_token"
)
awk 'NR==1 { brps=$2; bp50=$3; bp99=$4 }
     { printf "%-18s %9.1f req/s  p50 %7.3f ms  p99 %7.3f ms   rps x%.2f  p50 x%.2f  p99 x%.2f (vs direct)\n",
       $1, $2, $3, $4, $2/brps, $3/bp50, $4/bp99 }' <<<"$results"
