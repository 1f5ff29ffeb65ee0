#!/usr/bin/env bash
# Prints an aetos.conf for the running local stack: keystone mode with the
# stack's `aetos` service user, the main Prometheus as backend, listening on
# 127.0.0.1:PORT. Used by the demo and the load benchmark.
#
#   tools/aetos-conf.sh PORT
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
env_json=${AETOS_STACK_DIR:-$root/.stack}/env.json
[[ -f $env_json ]] || { echo "aetos-conf: no $env_json: run tools/stack.sh start" >&2; exit 1; }
port=${1:?usage: tools/aetos-conf.sh PORT}
jqr() { jq -r "$1" "$env_json"; }
ks=$(jqr .keystone_url)
cat <<CONF
[DEFAULT]
auth_mode = keystone

[api]
host = 127.0.0.1
port = $port

[prometheus]
url = $(jqr .prometheus_url)

[keystone_authtoken]
www_authenticate_uri = $ks
auth_url = $ks
auth_type = password
username = aetos
password = $(jqr '.users.aetos.password')
user_domain_id = default
project_name = service
project_domain_id = default
memcached_servers = $(jqr .memcached)
CONF
