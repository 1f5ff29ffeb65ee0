#!/usr/bin/env bash
# Dashboard benchmark on the local stack: a Grafana-style OpenStack
# dashboard of 10 query_range panels (below) over 6 hours at a 30 s step,
# refreshed over and over by CONNECTIONS browsers (one connection each,
# its panels one after the other: tools/bench/dashboard.lua), as a
# privileged and as a scoped caller, sent
#
#   direct       to Prometheus (for the scoped caller: with the project
#                matcher aetos would add),
#   cache off    through aetos without [cache],
#   cache cold   through aetos with [cache] (memory), every refresh a
#                window never asked before (moved by a few ms): all misses,
#   cache warm   through aetos with [cache], the same window every time,
#                after one refresh filled the cache: all hits,
#   last 6 h     the same, but the window ends now (when the run starts),
#                with split_interval = 1h and align_to_step: the pieces of
#                the last [cache] freshness (10 min) are always asked
#                from Prometheus, the older ones come from the cache.
#
#   tools/bench-dashboard.sh [DURATION_SECONDS] [CONNECTIONS]
#
# Prints, per case, dashboard refreshes/s, p50 and p99 of a refresh (first
# panel's request to last panel's answer), and the CPU per refresh of the
# stack's Prometheus (user + system time of its process over the run
# divided by the refreshes: its own scrapes and rules, and whatever else
# asks it meanwhile, included) and of aetos, with the ratios against
# direct. The window ends 15 minutes ago (older
# than [cache] freshness, so all of it may be cached) and holds the stack's
# live exporter data (its coverage is printed). wrk runs on CPU 1 and aetos
# (one worker) on CPU 0 as in tools/bench.sh; Prometheus is not pinned.
# Bounded: each run lasts DURATION seconds (default 10) against 127.0.0.1.
set -euo pipefail
duration=${1:-10}
conns=${2:-4}
((conns >= 1 && conns < 64)) || { echo "bench: CONNECTIONS must be 1..63" >&2; exit 2; }
# shellcheck source=tools/bench-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
if (($(nproc) >= 2)); then export WRK_CPUS=1 AETOS_PIN=0; fi

common="[api]
workers = 1
[limits]
max_concurrent_requests_per_project = 0"
start_aetos "$common"
off_port=$port off_pid=$aetos_pid
# Cold and warm on aetos processes of their own: the cold runs' entries
# (every window a new one) do not crowd out the warm runs'.
cache="[cache]
enabled = true
max_bytes = 67108864"
start_aetos "$common
$cache"
cold_port=$port cold_pid=$aetos_pid
start_aetos "$common
$cache"
warm_port=$port warm_pid=$aetos_pid
start_aetos "$common
$cache
split_interval = 1h
align_to_step = true"
live_port=$port live_pid=$aetos_pid
admin_token=$(login aetos service)
reader_token=$(login demo-reader demo)
demo=$(jqr .projects.demo)
prom_pid=$(awk '{print $1}' "$AETOS_STACK_DIR/run/prometheus.pid")
grep -q prometheus "/proc/$prom_pid/cmdline" 2>/dev/null ||
  { echo "bench: $AETOS_STACK_DIR/run/prometheus.pid is not a running Prometheus" >&2; exit 1; }

# The panels. SEL stands for the scoped caller's project matcher: removed
# for the privileged caller and for aetos (which adds it itself).
panels=(
  'sum by (project) (rate(ceilometer_cpuSEL[5m])) / 1e9'
  'avg by (resource_name) (ceilometer_memory_usageSEL)'
  'sum(ceilometer_memory_usageSEL)'
  'topk(5, rate(ceilometer_cpuSEL[5m]))'
  'count by (project) (ceilometer_memory_usageSEL)'
  'avg_over_time(ceilometer_memory_usageSEL[10m])'
  'sum by (server_group) (rate(ceilometer_cpuSEL[1m]))'
  'max by (server_group) (ceilometer_memory_usageSEL)'
  'sum by (job) (upSEL)'
  'avg_over_time(upSEL[5m])'
)
step=30
end=$((($(date +%s) - 900) / step * step))
start=$((end - 6 * 3600))
live_end=$(($(date +%s) / step * step))
live_start=$((live_end - 6 * 3600))

# panel_file NAME PREFIX SEL -> a file of the panels' request targets
panel_file() {
  local f=$work/panels-$1 p q
  : >"$f"
  for p in "${panels[@]}"; do
    q=${p//SEL/$3}
    echo "$2/api/v1/query_range?query=$(urlencode "$q")&step=$step" >>"$f"
  done
  echo "$f"
}
direct_priv=$(panel_file direct-privileged "" "")
direct_scoped=$(panel_file direct-scoped "" "{project=\"$demo\"}")
aetos_panels=$(panel_file aetos /prometheus "")

coverage=$(curl -sf "$prom/api/v1/query_range" --data-urlencode 'query=count(up{job="exporter"})' \
  -d "start=$start" -d "end=$end" -d "step=$step" | jq '[.data.result[0].values // [] | length][0]')
echo "bench: window $(date -u -d "@$start" +%FT%TZ) .. $(date -u -d "@$end" +%FT%TZ), step ${step}s;" \
  "exporter data at $coverage of its $((6 * 3600 / step + 1)) steps" >&2
echo "bench: ${#panels[@]} panels, $conns browsers, $duration s per case, wrk on CPU ${WRK_CPUS:-any}," \
  "aetos on CPU ${AETOS_PIN:-any}, Prometheus pid $prom_pid unpinned" >&2

hz=$(getconf CLK_TCK)

# dash NAME BASE_URL PANELS TOKEN COLD [AETOS_PID [START END]]
#   -> "NAME refreshes/s p50_ms p99_ms prom_ticks aetos_ticks refreshes seconds"
dash() {
  local name=$1 base=$2 file=$3 token=$4 cold=$5 apid=${6:-} from=${7:-$start} to=${8:-$end}
  local out pb pa ab=0 aa=0 pin=() auth=()
  [[ -n ${WRK_CPUS:-} ]] && pin=(taskset -c "$WRK_CPUS")
  [[ -n $token ]] && auth=(-H "X-Auth-Token: $token")
  pb=$(cpu_ticks "$prom_pid")
  [[ -n $apid ]] && ab=$(cpu_ticks "$apid")
  out=$("${pin[@]}" wrk -t"$conns" -c"$conns" -d"${duration}s" "${auth[@]}" \
    -s "$root/tools/bench/dashboard.lua" "$base" -- "$file" "$from" "$to" "$cold")
  pa=$(cpu_ticks "$prom_pid")
  [[ -n $apid ]] && aa=$(cpu_ticks "$apid")
  awk -v name="$name" -v pt=$((pa - pb)) -v at=$((aa - ab)) '
    / requests in / { secs = $4; sub(/s,?$/, "", secs) }
    /^dashboard / { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
    END {
      if (v["failed"] > 0) { printf "bench: %s: %d panel answers were not 200\n", name, v["failed"] > "/dev/stderr"; exit 1 }
      printf "%s %.2f %.3f %.3f %d %d %d %.3f\n", name, v["refreshes"] / secs, v["p50_ms"], v["p99_ms"], pt, at, v["refreshes"], secs
    }' <<<"$out"
}

# cache_answers PORT -> "hits misses" counted so far by that aetos
cache_answers() {
  curl -sf -H "X-Auth-Token: $admin_token" "http://127.0.0.1:$1/metrics" | awk '
    /^aetos_results_cache_answers_total\{outcome="hit"\}/ { h = $2 }
    /^aetos_results_cache_answers_total\{outcome="(miss|partial)"\}/ { m += $2 }
    END { printf "%d %d\n", h, m }'
}

results=""
for mode in privileged scoped; do
  if [[ $mode == privileged ]]; then token=$admin_token direct=$direct_priv; else token=$reader_token direct=$direct_scoped; fi
  # Token caches and connections warmed outside the measured runs.
  for p in "$off_port" "$cold_port" "$warm_port" "$live_port"; do
    curl -sf -o /dev/null -H "X-Auth-Token: $token" "http://127.0.0.1:$p/prometheus/api/v1/labels"
  done
  results+=$(dash "$mode/direct" "$prom" "$direct" "" 0)$'\n'
  results+=$(dash "$mode/off" "http://127.0.0.1:$off_port" "$aetos_panels" "$token" 0 "$off_pid")$'\n'
  read -r h0 m0 < <(cache_answers "$cold_port")
  results+=$(dash "$mode/cold" "http://127.0.0.1:$cold_port" "$aetos_panels" "$token" 1 "$cold_pid")$'\n'
  read -r h1 m1 < <(cache_answers "$cold_port")
  # One refresh fills the cache for the fixed window; then measured.
  while read -r target; do
    curl -sf -o /dev/null -H "X-Auth-Token: $token" "http://127.0.0.1:$warm_port$target&start=$start&end=$end"
    curl -sf -o /dev/null -H "X-Auth-Token: $token" "http://127.0.0.1:$live_port$target&start=$live_start&end=$live_end"
  done <"$aetos_panels"
  read -r h2 m2 < <(cache_answers "$warm_port")
  results+=$(dash "$mode/warm" "http://127.0.0.1:$warm_port" "$aetos_panels" "$token" 0 "$warm_pid")$'\n'
  read -r h3 m3 < <(cache_answers "$warm_port")
  read -r h4 m4 < <(cache_answers "$live_port")
  results+=$(dash "$mode/live" "http://127.0.0.1:$live_port" "$aetos_panels" "$token" 0 "$live_pid" \
    "$live_start" "$live_end")$'\n'
  read -r h5 m5 < <(cache_answers "$live_port")
  echo "bench: $mode answers: cold $((h1 - h0)) hits / $((m1 - m0)) misses or partial, warm $((h3 - h2)) / $((m3 - m2))," \
    "last 6 h $((h5 - h4)) / $((m5 - m4))" >&2
done

python3 - "$results" "$hz" <<'PY'
import sys
rows = {}
for line in sys.argv[1].splitlines():
    if line.strip():
        name, rps, p50, p99, pt, at, n, secs = line.split()
        rows[name] = (float(rps), float(p50), float(p99), int(pt), int(at), int(n), float(secs))
hz = float(sys.argv[2])
label = {"direct": "direct", "off": "aetos, cache off", "cold": "aetos, cache cold",
         "warm": "aetos, cache warm", "live": "aetos, last 6 h"}
print(f"{'caller':10} {'target':18} {'refresh/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'prom CPU':>9}"
      f" {'aetos CPU':>9}   {'rps/direct':>10} {'prom CPU/direct':>15}")
goal = []
for mode in ("privileged", "scoped"):
    d = rows[f"{mode}/direct"]
    def prom_ms(r):
        return r[3] * 1000 / hz / max(r[5], 1)
    for t in ("direct", "off", "cold", "warm", "live"):
        r = rows[f"{mode}/{t}"]
        aetos = f"{r[4] * 1000 / hz / max(r[5], 1):7.2f}ms" if t != "direct" else "        -"
        ratio = prom_ms(r) / prom_ms(d) if prom_ms(d) > 0 else float("nan")
        print(f"{mode:10} {label[t]:18} {r[0]:9.1f} {r[1]:8.2f} {r[2]:8.2f} {prom_ms(r):7.2f}ms"
              f" {aetos:>9}   {r[0] / d[0]:10.2f} {ratio:15.4f}")
    for t in ("warm", "live"):
        w = rows[f"{mode}/{t}"]
        goal.append(f"{mode}, {label[t]}: x{w[0] / d[0]:.1f} direct's refreshes/s, Prometheus CPU per refresh "
                    + (f"/{prom_ms(d) / prom_ms(w):.0f}" if prom_ms(w) > 0 else "below the clock's resolution"))
print("CPU: per dashboard refresh (10 panels), Prometheus' own background work included.")
print("Goal: warm >= 5x direct's refreshes/s, Prometheus CPU per refresh / 5.")
for g in goal:
    print(g)
PY
rss() { awk '/VmRSS/ {print $2, $3}' "/proc/$1/status"; }
echo "aetos RSS after the runs: cache off $(rss "$off_pid"), cold $(rss "$cold_pid"), warm $(rss "$warm_pid")," \
  "last 6 h $(rss "$live_pid")"
