#!/usr/bin/env bash
# Service load benchmark on the local stack. The same query is sent, in one
# run, directly to Prometheus (baseline 1), through a plain nginx reverse
# proxy (baseline 2: what any proxy costs on this box; config in
# tools/bench/nginx.conf), through the framework floor (baseline 3:
# examples/relay_floor.rs, actix-web relaying over hyper's client and
# nothing else, what aetos cannot cost less than), through aetos as a
# privileged caller and through aetos as a scoped caller, for `up` and a
# Watcher query.
#
#   tools/bench.sh [DURATION_SECONDS] [CONNECTIONS] [REPETITIONS]
#
# wrk runs on CPU 1, nginx, the floor and aetos (one worker each) on CPU 0; the
# repetitions are interleaved (every case once, then again) and the medians
# are printed: requests/s, p50, p99 and the proxy's CPU per request (user +
# system time of its process tree over the measured window / requests),
# with ratios against nginx, the floor and direct Prometheus. Bounded: every run lasts
# DURATION seconds (default 10) against 127.0.0.1.
# tools/bench-neighbour.sh measures one project's flood against another.
# tools/bench-dashboard.sh measures a dashboard of range panels with and
# without the results cache ([cache]).
set -euo pipefail
duration=${1:-10}
conns=${2:-8}
reps=${3:-3}
# shellcheck source=tools/bench-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
if ! command -v nginx >/dev/null 2>&1; then
  echo "bench: installing nginx-light" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
fi
ncpu=$(nproc)
if ((ncpu >= 2)); then export WRK_CPUS=1 AETOS_PIN=0; fi
start_aetos "[api]
workers = 1
[limits]
max_concurrent_requests_per_project = 0"
admin_token=$(login aetos service)
reader_token=$(login demo-reader demo)

# nginx: one worker, like aetos, on the same CPU.
nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -e "s|@PORT@|$nginx_port|" -e "s|@UPSTREAM@|${prom#http://}|" -e "s|@WORKERS@|1|" -e "s|@DIR@|$work|" \
  "$root/tools/bench/nginx.conf" >"$work/nginx.conf"
${AETOS_PIN:+taskset -c "$AETOS_PIN"} nginx -c "$work/nginx.conf" -p "$work" 2>"$work/nginx-start.log" &
nginx_pid=$!
pids+=("$nginx_pid")
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$nginx_port/prometheus/-/ready" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$nginx_port/prometheus/-/ready" >/dev/null ||
  { echo "bench: nginx did not start:" >&2; cat "$work/nginx-start.log" "$work/nginx-error.log" >&2; exit 1; }

# The framework floor, on the same CPU.
(cd "$root" && cargo build --quiet --release --example relay_floor)
floor_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
${AETOS_PIN:+taskset -c "$AETOS_PIN"} "$root/target/release/examples/relay_floor" "$floor_port" "${prom#http://}" \
  2>"$work/floor.log" &
floor_pid=$!
pids+=("$floor_pid")
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$floor_port/prometheus/-/ready" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$floor_port/prometheus/-/ready" >/dev/null ||
  { echo "bench: the floor relay did not start:" >&2; cat "$work/floor.log" >&2; exit 1; }

# A Watcher query (instance memory, clients.md) on a resource of the demo project.
resource=$(demo_resource)
declare -A queries=(
  [up]='up'
  [watcher]="avg_over_time(ceilometer_memory_usage{resource='$resource'}[300s])"
)
ticks_per_s=$(getconf CLK_TCK)

# run_case QUERY_NAME TARGET -> "query target rps p50 p99 cpu_us_per_request"
run_case() {
  local qname=$1 target=$2 qs url token="" pid="" before after line
  qs="query=$(urlencode "${queries[$qname]}")"
  case $target in
    direct) url="$prom/api/v1/query?$qs" ;;
    nginx) url="http://127.0.0.1:$nginx_port/prometheus/api/v1/query?$qs"; pid=$nginx_pid ;;
    floor) url="http://127.0.0.1:$floor_port/prometheus/api/v1/query?$qs"; pid=$floor_pid ;;
    privileged) url="http://127.0.0.1:$port/prometheus/api/v1/query?$qs"; token=$admin_token; pid=$aetos_pid ;;
    scoped) url="http://127.0.0.1:$port/prometheus/api/v1/query?$qs"; token=$reader_token; pid=$aetos_pid ;;
  esac
  before=$([[ -n $pid ]] && cpu_ticks "$pid" || echo 0)
  line=$(wrk_run "$target" "$url" "$token" "$conns" "$duration")
  after=$([[ -n $pid ]] && cpu_ticks "$pid" || echo 0)
  awk -v q="$qname" -v b="$before" -v a="$after" -v hz="$ticks_per_s" \
    '{ printf "%s %s %s %s %s %.1f\n", q, $1, $2, $3, $4, ($5 > 0 ? (a - b) * 1e6 / hz / $5 : 0) }' <<<"$line"
}

targets=(direct nginx floor privileged scoped)
echo "bench: $duration s per run, $conns connections, $reps interleaved repetitions (medians)," \
  "wrk on CPU ${WRK_CPUS:-any}, proxies on CPU ${AETOS_PIN:-any}" >&2
for q in up watcher; do echo "query $q: ${queries[$q]}" >&2; done
# Warm up token caches, connections and rewrite caches outside the window.
for q in up watcher; do for t in "${targets[@]}"; do run_case "$q" "$t" >/dev/null 2>&1 || true; done; done
results=$(
  for _ in $(seq 1 "$reps"); do
    for q in up watcher; do for t in "${targets[@]}"; do run_case "$q" "$t"; done; done
  done
)
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in sys.argv[1].splitlines():
    q, t, rps, p50, p99, cpu = line.split()
    rows.setdefault((q, t), []).append((float(rps), float(p50), float(p99), float(cpu)))
med = {k: [statistics.median(c) for c in zip(*v)] for k, v in rows.items()}
print(f"{'query':8} {'target':11} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU/req':>9}"
      f"   {'rps/direct':>10} {'rps/nginx':>9} {'CPU/nginx':>9} {'p99/nginx':>9} {'CPU/floor':>9}")
for q in ("up", "watcher"):
    d, n, f = med[(q, "direct")], med[(q, "nginx")], med[(q, "floor")]
    for t in ("direct", "nginx", "floor", "privileged", "scoped"):
        rps, p50, p99, cpu = med[(q, t)]
        cpu_s = f"{cpu:7.1f}us" if t != "direct" else "       -"
        vs_n = (f"{rps / n[0]:9.2f} {cpu / n[3]:9.2f} {p99 / n[2]:9.2f}"
                if t in ("floor", "privileged", "scoped") else "")
        vs_f = f" {cpu / f[3]:9.2f}" if t in ("privileged", "scoped") else ""
        print(f"{q:8} {t:11} {rps:9.1f} {p50:8.3f} {p99:8.3f} {cpu_s:>9}   {rps / d[0]:10.2f} {vs_n}{vs_f}")
PY
echo "aetos RSS after the runs: $(awk '/VmRSS/ {print $2, $3}' "/proc/$aetos_pid/status")"
