#!/usr/bin/env bash
# Smoke check of a running local stack (tools/stack.sh start).
#
# Why: proves with the real clients that the stack is what the contract
# says before tests rely on it: a demo-reader token from clouds.yaml
# validates (with the aetos service user's token) to role reader in project
# demo; the catalog has metric-storage; main and HA scrape the live series;
# main and only-A hold the same differential data of project A.
# Usage: tools/stack/smoke.sh [ENV_JSON]   (exit 0 = all checks passed)
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
E=${1:-${AETOS_STACK_DIR:-$ROOT/.stack}/env.json}
[[ -f $E ]] || { echo "smoke: no $E (run tools/stack.sh start)" >&2; exit 1; }
export NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"

# OS_* variables silently override clouds.yaml: keep only the file location.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^OS_' || true)
export OS_CLIENT_CONFIG_FILE
OS_CLIENT_CONFIG_FILE=$(jq -r .clouds_yaml "$E")
B=$(jq -r .venv_bin "$E")
KS=$(jq -r .keystone_url "$E")
T=$(jq -r .diff.eval_time "$E")
MAIN=$(jq -r .prometheus_url "$E")
ONLY_A=$(jq -r .prometheus_only_a_url "$E")
failed=0

check() { # check DESCRIPTION GOT WANT
  if [[ $2 == "$3" ]]; then
    echo "ok   $1"
  else
    echo "FAIL $1: got $2, want $3"
    failed=1
  fi
}

q() { # q URL QUERY [TIME] -> JSON result array
  local -a args=(--data-urlencode "query=$2")
  if (($# > 2)); then args+=(--data-urlencode "time=$3"); fi
  curl -fsS --max-time 10 -G "${args[@]}" "$1/api/v1/query" | jq -c .data.result
}

user_token=$("$B/openstack" --os-cloud demo-reader token issue -f value -c id)
login=$(jq -nc --arg pw "$(jq -r .users.aetos.password "$E")" \
  '{auth:{identity:{methods:["password"],password:{user:{name:"aetos",domain:{name:"Default"},password:$pw}}},
    scope:{project:{name:"service",domain:{name:"Default"}}}}}')
service_token=$(curl -fsS --max-time 10 -D - -o /dev/null -H 'Content-Type: application/json' \
  --data @- "$KS/auth/tokens" <<<"$login" | awk 'tolower($1) == "x-subject-token:" { print $2 }' | tr -d '\r')
validated=$(curl -fsS --max-time 10 -H @- "$KS/auth/tokens?nocatalog" \
  <<<"$(printf 'X-Auth-Token: %s\nX-Subject-Token: %s\n' "$service_token" "$user_token")")
check "demo-reader token roles" "$(jq -c '[.token.roles[].name]' <<<"$validated")" '["reader"]'
check "demo-reader token project" "$(jq -r .token.project.id <<<"$validated")" "$(jq -r .projects.demo "$E")"

catalog=$("$B/openstack" --os-cloud admin catalog show metric-storage -f json)
check "metric-storage endpoints" "$(jq -c '[.endpoints[] | .interface + "=" + .url] | sort' <<<"$catalog")" \
  "$(jq -c '.aetos_url as $u | ["admin", "internal", "public"] | map(. + "=" + $u)' "$E")"

for url in "$MAIN" $(jq -r '.prometheus_ha_urls[]' "$E"); do
  check "$url scrapes ceilometer_cpu" "$(q "$url" 'count(ceilometer_cpu)' | jq -r '.[0].value[1]')" 3
done
by_project='count by (project) ({__name__=~"diff_.+"})'
check "main diff series by project" "$(q "$MAIN" "$by_project" "$T" | jq -c 'map([.metric.project, .value[1]]) | sort')" \
  '[[null,"13"],["diff-a","36"],["diff-b","36"]]'
check "only-A diff series by project" "$(q "$ONLY_A" "$by_project" "$T" | jq -c 'map([.metric.project, .value[1]])')" \
  '[["diff-a","36"]]'
rate='sum by (code) (rate(diff_http_requests_total{project="diff-a"}[5m]))'
check "project A query equal on main and only-A" "$(q "$MAIN" "$rate" "$T" | jq -c 'sort_by(.metric.code)')" \
  "$(q "$ONLY_A" "$rate" "$T" | jq -c 'sort_by(.metric.code)')"

if ((failed)); then
  echo "smoke: FAILED" >&2
  exit 1
fi
echo "smoke: all checks passed"
