#!/usr/bin/env bash
# Service load benchmark on the local stack: the same query sent directly to
# Prometheus (the baseline, measured in the same run), through aetos as a
# privileged caller and through aetos as a scoped caller. Prints requests/s,
# p50 and p99 for each, and the ratios against the baseline.
#
#   tools/bench.sh [DURATION_SECONDS] [CONNECTIONS]
#
# Bounded: each run lasts DURATION seconds (default 10) against 127.0.0.1.
# tools/bench-neighbour.sh measures one project's flood against another.
set -euo pipefail
duration=${1:-10}
conns=${2:-16}
# shellcheck source=tools/bench-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
start_aetos "[limits]
max_concurrent_requests_per_project = 0"
admin_token=$(login aetos service)
reader_token=$(login demo-reader demo)

query='sum by (project) (rate(ceilometer_cpu[5m]))'
qs="query=$(urlencode "$query")"

echo "query: $query   ($duration s per run, $conns connections)"
results=$(
  wrk_run direct-prometheus "$prom/api/v1/query?$qs" "" "$conns" "$duration"
  wrk_run aetos-privileged "http://127.0.0.1:$port/prometheus/api/v1/query?$qs" "$admin_token" "$conns" "$duration"
  wrk_run aetos-scoped "http://127.0.0.1:$port/prometheus/api/v1/query?$qs" "$reader_token" "$conns" "$duration"
)
awk 'NR==1 { brps=$2; bp50=$3; bp99=$4 }
     { printf "%-18s %9.1f req/s  p50 %7.3f ms  p99 %7.3f ms   rps x%.2f  p50 x%.2f  p99 x%.2f (vs direct)\n",
       $1, $2, $3, $4, $2/brps, $3/bp50, $4/bp99 }' <<<"$results"
