#!/usr/bin/env bash
# Instructions per request of aetos itself, counted by valgrind's callgrind
# (user space only; repeatable for the same binary and inputs whatever else
# the machine is doing, unlike CPU time). For changes to the request path:
# run it before and after (AETOS_BIN=... for another build) and compare.
#
#   tools/bench-instructions.sh [SECONDS_PER_CASE]
#
# Cases: privileged `up`, a Watcher query privileged and scoped, one worker, wrk with 1
# connection (requests one after another: no batching of wake-ups that
# would make the count depend on the throughput reached); callgrind's
# counters are zeroed after a warm-up and dumped after the measured window;
# then the same for the framework floor and nginx, the baselines of
# tools/bench.sh, relaying `up`. Note: glibc's `rep stosb` memset counts one
# instruction per byte under valgrind, so actix' header-index zeroing
# (~12k per request) weighs more here than it costs.
set -euo pipefail
secs=${1:-8}
# shellcheck source=tools/bench-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
if ! command -v valgrind >/dev/null 2>&1; then
  echo "bench: installing valgrind" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
{ "$root/tools/aetos-conf.sh" "$port" | sed 's/^port = .*/&\nworkers = 1/'; printf '[limits]\nmax_concurrent_requests_per_project = 0\n'; } >"$work/aetos.conf"
admin_token=$(login aetos service)
reader_token=$(login demo-reader demo)
resource=$(demo_resource)
watcher=$(urlencode "avg_over_time(ceilometer_memory_usage{resource='$resource'}[300s])")
# counted NAME -> instructions since the last zeroing (then zeroed again)
dumps() { find "$work" -maxdepth 1 -name "${cg##*/}.*" | wc -l; }
counted() {
  local file
  file=$cg.$(($(dumps) + 1))
  callgrind_control -d "$1" "$vpid" >/dev/null 2>&1
  for _ in $(seq 1 50); do [[ -s $file ]] && break; sleep 0.1; done
  callgrind_control -z "$vpid" >/dev/null 2>&1
  callgrind_annotate "$file" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}
# start_counted OUT READY_URL CMD... -> runs CMD under callgrind (counts in
# OUT.N), waits for READY_URL, measures its idle rate; sets vpid and idle.
start_counted() {
  local ready=$2
  cg=$1
  valgrind --tool=callgrind --callgrind-out-file="$cg" "${@:3}" >"$cg-log" 2>&1 &
  vpid=$!
  pids+=("$vpid")
  for _ in $(seq 1 600); do curl -sf "$ready" >/dev/null && break; sleep 0.1; done
  curl -sf "$ready" >/dev/null || { echo "bench: $3 did not start:" >&2; cat "$cg-log" >&2; exit 1; }
  callgrind_control -z "$vpid" >/dev/null 2>&1
  sleep "$secs"
  idle=$(counted idle)
}
stop_counted() { kill "$vpid" 2>/dev/null || true; wait "$vpid" 2>/dev/null || true; }
# What the process runs with no request (health checks, reload checks,
# cache housekeeping), per second, is taken out of the per-request figure.
AETOS_LOG=warn start_counted "$work/cg.out" "http://127.0.0.1:$port/healthcheck" \
  "${AETOS_BIN:-$root/target/release/aetos-api}" --config-file "$work/aetos.conf"
echo "idle: $((idle / secs)) instructions/s (subtracted below)"
# measure NAME URL TOKEN -> "NAME requests instructions/request"
measure() {
  local n total
  local auth=()
  [[ -n $3 ]] && auth=(-H "X-Auth-Token: $3")
  wrk -t1 -c1 -d2s "${auth[@]}" "$2" >/dev/null
  callgrind_control -z "$vpid" >/dev/null 2>&1
  n=$(wrk -t1 -c1 -d"${secs}s" "${auth[@]}" "$2" | awk '/ requests in / {print $1}')
  total=$(counted "$1")
  # AETOS_CALLGRIND_KEEP=DIR keeps each case's profile for callgrind_annotate.
  [[ -n ${AETOS_CALLGRIND_KEEP:-} ]] && mkdir -p "$AETOS_CALLGRIND_KEEP" &&
    cp "$cg.$(dumps)" "$AETOS_CALLGRIND_KEEP/${1// /-}.callgrind"
  last=$(((total - idle) / n))
  printf '%-22s %8d requests %8d instructions/request\n' "$1" "$n" "$last"
}
measure "privileged up" "http://127.0.0.1:$port/prometheus/api/v1/query?query=up" "$admin_token"
aetos_up=$last
measure "privileged watcher" "http://127.0.0.1:$port/prometheus/api/v1/query?query=$watcher" "$admin_token"
measure "scoped watcher" "http://127.0.0.1:$port/prometheus/api/v1/query?query=$watcher" "$reader_token"

# The baselines, counted the same way, relaying `up`: the framework floor
# of tools/bench.sh (examples/relay_floor.rs: actix-web and hyper's client,
# nothing of aetos), and nginx as its plain reverse proxy (one process:
# master_process off).
stop_counted
(cd "$root" && cargo build --quiet --release --example relay_floor)
floor_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start_counted "$work/floor-cg.out" "http://127.0.0.1:$floor_port/prometheus/-/ready" \
  "$root/target/release/examples/relay_floor" "$floor_port" "${prom#http://}"
measure "floor up" "http://127.0.0.1:$floor_port/prometheus/api/v1/query?query=up" ""
floor_up=$last
stop_counted
if ! command -v nginx >/dev/null 2>&1; then
  echo "bench: installing nginx-light" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
fi
nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -e "s|@PORT@|$nginx_port|" -e "s|@UPSTREAM@|${prom#http://}|" -e "s|@WORKERS@|1|" -e "s|@DIR@|$work|" \
  "$root/tools/bench/nginx.conf" >"$work/nginx.conf"
start_counted "$work/nginx-cg.out" "http://127.0.0.1:$nginx_port/prometheus/-/ready" \
  nginx -c "$work/nginx.conf" -p "$work" -g 'master_process off;'
measure "nginx up" "http://127.0.0.1:$nginx_port/prometheus/api/v1/query?query=up" ""
awk -v a="$aetos_up" -v f="$floor_up" -v n="$last" \
  'BEGIN { printf "privileged up / floor up: %.2f, / nginx up: %.2f\n", a / f, a / n }'
