# Shared by the load benchmarks (sourced, not run): builds the release
# binary, starts one aetos-api on the local stack with the config text given
# to start_aetos (appended to tools/aetos-conf.sh's), logs users in and runs
# wrk. Every run is bounded in time and sends traffic to 127.0.0.1 only.
# shellcheck shell=bash
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export AETOS_STACK_DIR=${AETOS_STACK_DIR:-$root/.stack}

if ! command -v wrk >/dev/null 2>&1; then
  echo "bench: installing wrk" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
# A running stack is used as it is; only a stopped one is started.
"$root/tools/stack.sh" status >/dev/null 2>&1 || "$root/tools/stack.sh" start >/dev/null
env_json=$AETOS_STACK_DIR/env.json
jqr() { jq -r "$1" "$env_json"; }
(cd "$root" && cargo build --quiet --release --bin aetos-api)

# shellcheck disable=SC2034 # used by the scripts that source this one
prom=$(jqr .prometheus_url)
ks=$(jqr .keystone_url)
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# cpu_ticks PID... -> user+system clock ticks used so far by the processes
# and their children (all threads: /proc/PID/stat counts the thread group).
cpu_ticks() {
  local p all=() total=0 t
  for p in "$@"; do all+=("$p"); while read -r t; do all+=("$t"); done < <(pgrep -P "$p" || true); done
  for p in "${all[@]}"; do
    t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)
    total=$((total + t))
  done
  echo "$total"
}

# start_aetos EXTRA_CONF -> sets $port and $aetos_pid of a new aetos-api
# ($AETOS_PIN, when set, pins it to those CPUs; $AETOS_BIN runs another binary).
start_aetos() {
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  { "$root/tools/aetos-conf.sh" "$port"; printf '%s\n' "${1:-}"; } >"$work/aetos-$port.conf"
  AETOS_LOG=warn ${AETOS_PIN:+taskset -c "$AETOS_PIN"} "${AETOS_BIN:-$root/target/release/aetos-api}" --config-file "$work/aetos-$port.conf" >"$work/log-$port" 2>&1 &
  pids+=($!)
  # shellcheck disable=SC2034 # read by the scripts that source this one
  aetos_pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthcheck" >/dev/null && return; sleep 0.1; done
  echo "bench: aetos-api did not start:" >&2; cat "$work/log-$port" >&2; exit 1
}

# login USER PROJECT -> a project-scoped token
login() {
  curl -sf -D - -o /dev/null -H 'Content-Type: application/json' "$ks/auth/tokens?nocatalog" -d "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"$1\",\"domain\":{\"id\":\"default\"},\"password\":\"$(jqr ".users[\"$1\"].password")\"}}},\"scope\":{\"project\":{\"name\":\"$2\",\"domain\":{\"id\":\"default\"}}}}}" \
    | awk 'tolower($1)=="x-subject-token:" {print $2}' | tr -d '\r'
}

# demo_resource -> a resource of the demo project with memory samples, so
# that the scoped caller (demo-reader) gets the same series as the
# privileged one: a resource of another project would answer it with an
# empty result, cheaper than any real one.
demo_resource() {
  curl -sf "$prom/api/v1/series" --data-urlencode "match[]=ceilometer_memory_usage{project=\"$(jqr .projects.demo)\"}" |
    jq -r '[.data[] | select(.resource != null)][0].resource // error("no memory samples of the demo project")'
}

urlencode() { python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }

# wrk_run NAME URL TOKEN CONNS DURATION [allow-non-2xx] [PAUSE_MS]
#   -> "NAME rps p50_ms p99_ms requests"; PAUSE_MS: each connection waits
#   that long between its requests (a paced client rather than a flood).
#   $WRK_CPUS, when set, pins wrk to those CPUs (taskset -c).
wrk_run() {
  local name=$1 url=$2 token=$3 c=$4 d=$5 allow=${6:-} pause=${7:-} out threads=2
  ((c < 2)) && threads=1
  local args=(-t"$threads" -c"$c" -d"${d}s" --latency) pin=()
  [[ -n ${WRK_CPUS:-} ]] && pin=(taskset -c "$WRK_CPUS")
  [[ -n $token ]] && args+=(-H "X-Auth-Token: $token")
  if [[ -n $pause ]]; then
    printf 'function delay() return %d end\n' "$pause" >"$work/pace-$pause.lua"
    args+=(-s "$work/pace-$pause.lua")
  fi
  out=$("${pin[@]}" wrk "${args[@]}" "$url")
  local non2xx
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  if [[ -n $non2xx && -z $allow ]]; then
    echo "bench: $name got $non2xx non-2xx answers" >&2; exit 1
  fi
  awk -v name="$name" '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) } /^Requests\/sec/ { rps = $2 }
    / requests in / { n = $1 }
    END { printf "%s %.1f %.3f %.3f %d\n", name, rps, p50, p99, n }' <<<"$out"
}
