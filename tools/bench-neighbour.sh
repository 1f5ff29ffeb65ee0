#!/usr/bin/env bash
# Noisy-neighbour benchmark on the local stack: project B (demo) sends a
# dashboard-style query on 2 paced connections (a request every 100 ms on
# each: within its rate limit), first alone, then while project
# A (other) floods aetos on many connections with regex-heavy and
# long-range queries. aetos runs with the limits doc/source/admin/limits.rst
# recommends. Prints B's requests/s, p50 and p99 unloaded and loaded, the
# ratios, and what A got (answers and 429s).
#
#   tools/bench-neighbour.sh [DURATION_SECONDS] [A_CONNECTIONS]
#
# Bounded: each run lasts DURATION seconds (default 20) against 127.0.0.1.
set -euo pipefail
duration=${1:-20}
flood_conns=${2:-64}
# shellcheck source=tools/bench-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
start_aetos "[limits]
max_concurrent_requests_per_project = 4
max_queued_requests_per_project = 16
max_queue_time = 5
requests_per_second_per_project = 20
request_burst_per_project = 40
max_query_length = 32d
max_query_lookback = 90d"
b_token=$(login demo-reader demo)
a_token=$(login other-member other)
base="http://127.0.0.1:$port/prometheus/api/v1"

b_query='sum by (project) (rate(ceilometer_cpu[5m]))'
b_url="$base/query?query=$(urlencode "$b_query")"
# A: 60 regex matchers a query (what cost seconds of CPU before), and a
# 30-day range at a 5 min step (8640 points a series).
heavy=$(python3 -c 'print(",".join("l%d=~\"\\\\w{0,99}\\\\p{L}{1,40}\"" % i for i in range(60)))')
a_regex_url="$base/query?query=$(urlencode "sum(rate(ceilometer_cpu{$heavy}[5m]))")"
now=$(date +%s)
a_range_url="$base/query_range?query=$(urlencode 'sum by (project) (rate(ceilometer_cpu[5m]))')&start=$((now - 30 * 86400))&end=$now&step=300"

echo "B: $b_query on 2 paced connections; A floods on $flood_conns connections ($duration s per run)"
unloaded=$(wrk_run b-unloaded "$b_url" "$b_token" 2 "$duration" "" 100)
wrk_run a-regex "$a_regex_url" "$a_token" $((flood_conns / 2)) $((duration + 2)) allow >"$work/a1" &
f1=$!
wrk_run a-range "$a_range_url" "$a_token" $((flood_conns / 2)) $((duration + 2)) allow >"$work/a2" &
f2=$!
sleep 1
loaded=$(wrk_run b-loaded "$b_url" "$b_token" 2 "$duration" "" 100)
wait "$f1" "$f2"
printf '%s\n%s\n' "$unloaded" "$loaded" | awk '
  NR==1 { r=$2; p50=$3; p99=$4 }
  { printf "%-12s %9.1f req/s  p50 %7.3f ms  p99 %7.3f ms\n", $1, $2, $3, $4 }
  END { printf "B loaded/unloaded: rps x%.2f  p50 x%.2f  p99 x%.2f\n", $2/r, $3/p50, $4/p99 }'
cat "$work/a1" "$work/a2" | awk '{ printf "%-12s %9.1f req/s (answers and 429s)  p50 %7.3f ms  p99 %7.3f ms\n", $1, $2, $3, $4 }'
echo "aetos_limit_refusals_total as counted by aetos:"
curl -s -H "X-Auth-Token: $(login aetos service)" "http://127.0.0.1:$port/metrics" | grep '^aetos_limit_refusals_total' || true
