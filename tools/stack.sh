#!/usr/bin/env bash
# Local real-component stack for aetos: Keystone, Prometheus (main, only-A,
# HA pair), Alertmanager, memcached and a synthetic exporter, all on 127.0.0.1.
#
# Why: tests, the demo, benchmarks and CI need the real components aetos
# talks to, installed and started the same way on every machine (a fresh
# Debian bookworm, root, only package registries reachable).
#
# Usage: tools/stack.sh install | start | stop | status | env
#                       | restart COMPONENT | stop-component COMPONENT
#                       | start-component COMPONENT
# COMPONENT: keystone prometheus prometheus-a prometheus-ha alertmanager memcached exporter
#            victoriametrics
#            (prometheus-ha-1 or prometheus-ha-2 alone: one member of the HA pair)
#
# start   installs what is missing (apt: prometheus prometheus-alertmanager
#         victoria-metrics dnsmasq-base haproxy memcached jq curl; a uv
#         virtualenv with keystone 30, gunicorn, openstack CLI; another with
#         the consumers Watcher, Aodh, CloudKitty, prometheus-api-client), starts what
#         is not running, seeds Keystone, pushes the differential data set,
#         and writes env.json + clouds.yaml.  Idempotent; a warm start takes
#         about a second.
# stop    stops every process this script started (by recorded pid).
# status  one line per process; exit 0 when all run, 3 otherwise.
# env     prints env.json.
# State (pids, logs, data, venv, env.json): ${AETOS_STACK_DIR:-<repo>/.stack}.
# Ports: keystone 5000, prometheus 9090 (main) 9091 (only-A) 9092+9093 (HA),
# alertmanager 9095 (no cluster port), memcached 11211, exporter 9110,
# victoriametrics 8428 (single node, scrapes the exporter) -- all
# bound to 127.0.0.1.
set -euo pipefail
set -o errtrace
shopt -s inherit_errexit
set +m

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELPERS=$ROOT/tools/stack
S=$(realpath -m "${AETOS_STACK_DIR:-$ROOT/.stack}")
VENV=$S/venv
LOCKFILE=$HELPERS/requirements.txt
# The real consumers of aetos (Watcher, Aodh, CloudKitty, prometheus-api-client)
# live in their own virtualenv: their pins conflict with the stack's.
CONSUMERS_VENV=$S/consumers-venv
CONSUMERS_LOCKFILE=$HELPERS/consumers-requirements.txt

readonly HOST=127.0.0.1
readonly KEYSTONE_PORT=5000
readonly MEMCACHED_PORT=11211
readonly EXPORTER_PORT=9110
# Not Alertmanager's usual 9093 (an HA Prometheus has it).
readonly ALERTMANAGER_PORT=9095
# VictoriaMetrics single node (tests/functional_victoriametrics.rs).
readonly VM_PORT=8428
readonly REGION=RegionOne
readonly KEYSTONE_URL="http://$HOST:$KEYSTONE_PORT/v3"
readonly AETOS_URL="http://$HOST:8080/prometheus"
readonly DIFF_STEP=15
# Reuse the differential data set's timestamps while they are younger than
# this (Prometheus keeps 15 days; beyond that the data set is rebuilt).
readonly DIFF_MAX_AGE=$((7 * 86400))

# Prometheus instances: name -> port and data directory name.
declare -A PROM_PORT=([prometheus]=9090 [prometheus-a]=9091 [prometheus-ha-1]=9092 [prometheus-ha-2]=9093)
declare -A PROM_DIR=([prometheus]=main [prometheus-a]=only-a [prometheus-ha-1]=ha-1 [prometheus-ha-2]=ha-2)
readonly COMPONENTS="memcached keystone prometheus prometheus-a prometheus-ha alertmanager exporter victoriametrics"

# Users: name, project (- for none), roles (comma separated, - for none).
readonly USERS=(
  "admin admin admin"
  "aetos service admin,service"
  "demo-admin demo admin"
  "demo-member demo member"
  "demo-reader demo reader"
  "other-member other member"
  "noroles - -"
)

# Never send loopback traffic through a proxy the caller may have configured.
export NO_PROXY="$HOST,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="$HOST,localhost${no_proxy:+,$no_proxy}"
export DEBIAN_FRONTEND=noninteractive

T_START_US=${EPOCHREALTIME//[!0-9]/}

# ------------------------------------------------------------------ output
now_ms() { local t=${EPOCHREALTIME//[!0-9]/}; echo $((t / 1000)); }

elapsed() {
  local ms=$(($(now_ms) - T_START_US / 1000))
  printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100))
}

say() { printf 'stack: [%6ss] %s\n' "$(elapsed)" "$*" >&2; }

die() {
  printf 'stack: ERROR: %s\n' "$*" >&2
  exit 1
}

# Print why a component failed, with the tail of its log, and exit.
fail_component() {
  local name=$1 why=$2 log="$S/logs/$1.log"
  printf 'stack: ERROR: %s %s\n' "$name" "$why" >&2
  if [[ -f $log ]]; then
    printf -- '---- last lines of %s ----\n' "$log" >&2
    tail -n 30 "$log" >&2
    printf -- '----\n' >&2
  fi
  exit 1
}

on_err() {
  # Report unexpected failures once, from the main shell only.
  if [[ $BASHPID == "$$" ]]; then
    printf 'stack: ERROR: command failed (line %s): %s\n' "$1" "$2" >&2
  fi
}
trap 'on_err "$LINENO" "$BASH_COMMAND"' ERR

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

# ---------------------------------------------------------------- processes
pidfile() { echo "$S/run/$1.pid"; }

# Print "STATE STARTTIME" of a process from /proc (zombies included).
proc_info() {
  local line
  line=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  line=${line##*) }
  local -a f
  read -r -a f <<<"$line"
  printf '%s %s\n' "${f[0]}" "${f[19]}"
}

# True when the process recorded for NAME is alive: same start time (not a
# reused pid) and not a zombie (PID 1 here does not reap, so kill -0 lies).
is_running() {
  local f pid start info
  f=$(pidfile "$1")
  [[ -f $f ]] || return 1
  read -r pid start <"$f" || return 1
  info=$(proc_info "$pid") || return 1
  [[ ${info%% *} != [ZX] && ${info#* } == "$start" ]]
}

recorded_pid() {
  local pid _start
  read -r pid _start <"$(pidfile "$1")"
  echo "$pid"
}

# Number of live (non-zombie) processes in process group $1.
group_live() {
  ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { n++ } END { print n + 0 }'
}

# True when something listens on 127.0.0.1:$1.
port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# launch NAME CMD...: start CMD in its own session, log to logs/NAME.log,
# record "pid starttime" in run/NAME.pid.
launch() {
  local name=$1 pid info
  shift
  mkdir -p "$S/run" "$S/logs"
  printf '==== %s starting %s\n' "$(date -u +%FT%TZ)" "$name" >>"$S/logs/$name.log"
  setsid "$@" >>"$S/logs/$name.log" 2>&1 </dev/null 9>&- &
  pid=$!
  info=$(proc_info "$pid") || fail_component "$name" "vanished right after start"
  echo "$pid ${info#* }" >"$(pidfile "$name")"
}

# stop_proc NAME: TERM its process group, wait, KILL if needed.
stop_proc() {
  local name=$1 f pid deadline
  f=$(pidfile "$name")
  [[ -f $f ]] || return 0
  if is_running "$name"; then
    pid=$(recorded_pid "$name")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    deadline=$(($(now_ms) + 20000))
    while (($(group_live "$pid") > 0)); do
      if (($(now_ms) > deadline)); then
        say "$name did not stop on TERM, killing"
        kill -KILL -- "-$pid" 2>/dev/null || true
        sleep 0.5
        break
      fi
      sleep 0.1
    done
    say "stopped $name (pid $pid)"
  fi
  rm -f "$f"
}

# wait_http NAME URL TIMEOUT_S: poll URL until it answers 2xx.
wait_http() {
  local name=$1 url=$2 deadline=$(($(now_ms) + $3 * 1000))
  until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
    is_running "$name" || fail_component "$name" "exited during startup"
    (($(now_ms) < deadline)) || fail_component "$name" "not ready after $3 s ($url)"
    sleep 0.1
  done
}

memcached_answers() {
  (
    exec 3<>"/dev/tcp/$HOST/$MEMCACHED_PORT"
    printf 'version\r\n' >&3
    read -r -t 2 reply <&3
    [[ $reply == VERSION* ]]
  ) 2>/dev/null
}

# ---------------------------------------------------------------- install
POLICY_RC=/usr/sbin/policy-rc.d
POLICY_RC_BACKUP=
POLICY_RC_PLACED=0

restore_policy_rc() {
  if ((POLICY_RC_PLACED)); then
    if [[ -n $POLICY_RC_BACKUP ]]; then mv -f "$POLICY_RC_BACKUP" "$POLICY_RC"; else rm -f "$POLICY_RC"; fi
    POLICY_RC_PLACED=0
  fi
}
trap restore_policy_rc EXIT

# Debian would start prometheus and memcached on install (prometheus on
# 0.0.0.0:9090, colliding with ours): forbid that while apt runs.
place_policy_rc() {
  if [[ -e $POLICY_RC ]]; then
    POLICY_RC_BACKUP=$(mktemp)
    cp -p "$POLICY_RC" "$POLICY_RC_BACKUP"
  fi
  POLICY_RC_PLACED=1
  printf '#!/bin/sh\n# aetos tools/stack.sh: no daemon autostart during apt-get install\nexit 101\n' >"$POLICY_RC"
  chmod 755 "$POLICY_RC"
}

apt_install() {
  local log=$S/logs/apt.log
  local -a apt=(apt-get -y -q -o DPkg::Lock::Timeout=300)
  say "apt-get install $*"
  if ! "${apt[@]}" install --no-install-recommends "$@" >>"$log" 2>&1; then
    "${apt[@]}" update >>"$log" 2>&1 || fail_component apt "update failed"
    "${apt[@]}" install --no-install-recommends "$@" >>"$log" 2>&1 || fail_component apt "install $* failed"
  fi
}

# Stop and disable the instances Debian may have started or enabled: this
# stack runs its own, on loopback only, with its own data directories.
disable_debian_services() {
  local svc
  for svc in prometheus prometheus-alertmanager memcached victoria-metrics haproxy; do
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
      systemctl disable --now "$svc" >>"$S/logs/apt.log" 2>&1 || true
    elif [[ -x /etc/init.d/$svc ]]; then
      if "/etc/init.d/$svc" status >/dev/null 2>&1; then
        say "stopping Debian's $svc service"
        "/etc/init.d/$svc" stop >>"$S/logs/apt.log" 2>&1 || true
      fi
      update-rc.d "$svc" disable >>"$S/logs/apt.log" 2>&1 || true
    fi
  done
}

install_packages() {
  local -a missing=()
  command -v prometheus >/dev/null || missing+=(prometheus)
  command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
  command -v victoria-metrics >/dev/null || missing+=(victoria-metrics)
  # The DNS server of tests/functional_discovery.rs: the binary alone (the
  # 'dnsmasq' package would add a system service on port 53).
  [[ -x /usr/sbin/dnsmasq ]] || missing+=(dnsmasq-base)
  # The load balancer of tests/functional_replicas.rs, which starts its own
  # haproxy with its own config: Debian's service is disabled below.
  [[ -x /usr/sbin/haproxy ]] || missing+=(haproxy)
  command -v memcached >/dev/null || missing+=(memcached)
  command -v jq >/dev/null || missing+=(jq)
  command -v curl >/dev/null || missing+=(curl)
  command -v ps >/dev/null || missing+=(procps)
  command -v flock >/dev/null || missing+=(util-linux)
  ((${#missing[@]})) || return 0
  [[ $(id -u) == 0 ]] || die "missing ${missing[*]}: run as root so apt-get can install them"
  place_policy_rc
  apt_install "${missing[@]}"
  restore_policy_rc
  disable_debian_services
}

venv_ok() {
  [[ -x $VENV/bin/python && -x $VENV/bin/openstack && -x $VENV/bin/gunicorn && -f $VENV/.aetos-stack-lock ]] &&
    [[ $(cat "$VENV/.aetos-stack-lock") == "$(sha256sum "$LOCKFILE" | cut -d' ' -f1)" ]]
}

# The virtualenv: keystone, gunicorn, openstack CLI + observability plugin,
# cramjam (snappy).  uv installs the pinned set in seconds, pip takes ~80 s.
install_venv() {
  local py=${AETOS_STACK_PYTHON:-python3} uv_pin
  if [[ ! -x $VENV/bin/python ]]; then
    if ! "$py" -m venv "$VENV"; then
      rm -rf "$VENV"
      apt_install python3-venv
      py=/usr/bin/python3
      "$py" -m venv "$VENV"
    fi
  fi
  uv_pin=$(grep -E '^uv==' "$LOCKFILE" || echo uv)
  [[ -x $VENV/bin/uv ]] || "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$uv_pin"
  "$VENV/bin/uv" pip install -q --python "$VENV/bin/python" -r "$LOCKFILE"
  sha256sum "$LOCKFILE" | cut -d' ' -f1 >"$VENV/.aetos-stack-lock"
}

consumers_venv_ok() {
  [[ -x $CONSUMERS_VENV/bin/python && -f $CONSUMERS_VENV/.aetos-stack-lock ]] &&
    [[ $(cat "$CONSUMERS_VENV/.aetos-stack-lock") == "$(sha256sum "$CONSUMERS_LOCKFILE" | cut -d' ' -f1)" ]]
}

# The consumers' virtualenv, installed by the stack venv's uv once per pin
# set, then byte-compiled once: their imports take seconds without bytecode
# (PYTHONDONTWRITEBYTECODE may be set wherever the tests run).
install_consumers_venv() {
  rm -f "$CONSUMERS_VENV/.aetos-stack-lock"
  [[ -x $CONSUMERS_VENV/bin/python ]] || "$VENV/bin/uv" venv -q --python "$VENV/bin/python" "$CONSUMERS_VENV"
  "$VENV/bin/uv" pip install -q --python "$CONSUMERS_VENV/bin/python" -r "$CONSUMERS_LOCKFILE"
  "$CONSUMERS_VENV/bin/python" -m compileall -q -j 0 "$CONSUMERS_VENV/lib" >/dev/null
  sha256sum "$CONSUMERS_LOCKFILE" | cut -d' ' -f1 >"$CONSUMERS_VENV/.aetos-stack-lock"
}

# Both virtualenvs: the consumers' needs the stack venv's uv.
install_venvs() {
  if ! venv_ok; then install_venv; fi
  if ! consumers_venv_ok; then install_consumers_venv; fi
}

cmd_install() {
  mkdir -p "$S/logs" "$S/run"
  local vpid=""
  if ! venv_ok || ! consumers_venv_ok; then
    say "installing the virtualenvs in $VENV and $CONSUMERS_VENV (uv; log: logs/venv.log)"
    install_venvs >>"$S/logs/venv.log" 2>&1 &
    vpid=$!
  fi
  install_packages
  if [[ -n $vpid ]]; then
    wait "$vpid" || fail_component venv "installation failed"
    say "virtualenv ready"
  fi
  command -v prometheus >/dev/null || die "prometheus is not installed"
  command -v prometheus-alertmanager >/dev/null || die "prometheus-alertmanager is not installed"
}

# ---------------------------------------------------------------- secrets
PASSWORDS=$S/passwords.json

ensure_passwords() {
  [[ -f $PASSWORDS ]] && return 0
  local json='{}' entry name
  for entry in "${USERS[@]}"; do
    name=${entry%% *}
    json=$(jq -c --arg n "$name" --arg p "$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')" '.[$n] = $p' <<<"$json")
  done
  (umask 077 && printf '%s\n' "$json" >"$PASSWORDS.tmp")
  mv "$PASSWORDS.tmp" "$PASSWORDS"
}

# Load the passwords into the associative array PW (name -> password).
declare -A PW=()
load_passwords() {
  local name pw
  PW=()
  while read -r name pw; do PW[$name]=$pw; done < <(jq -r 'to_entries[] | "\(.key) \(.value)"' "$PASSWORDS")
  ((${#PW[@]} == ${#USERS[@]})) || die "$PASSWORDS does not hold a password for every user"
}

# ---------------------------------------------------------------- keystone
KS_DIR=$S/keystone

write_keystone_conf() {
  mkdir -p "$KS_DIR"
  cat >"$KS_DIR/keystone.conf.tmp" <<EOF
# Written by tools/stack.sh
[database]
connection = sqlite:///$KS_DIR/keystone.db

[token]
provider = fernet
expiration = 3600

[fernet_tokens]
key_repository = $KS_DIR/fernet-keys

[fernet_receipts]
key_repository = $KS_DIR/fernet-keys

[credential]
key_repository = $KS_DIR/credential-keys

[identity]
# Default bcrypt cost makes each login 0.6-0.9 s.
password_hash_rounds = 4

[cache]
# Without a cache each token validation is ~300 SQL queries.
enabled = true
backend = dogpile.cache.memory
EOF
  mv "$KS_DIR/keystone.conf.tmp" "$KS_DIR/keystone.conf"
}

# db_sync, fernet/credential setup and bootstrap, once per state directory.
keystone_setup() {
  [[ -f $KS_DIR/.setup-done && -f $PASSWORDS ]] && return 0
  say "setting up keystone (db_sync, fernet, bootstrap)"
  rm -rf "$KS_DIR/keystone.db" "$KS_DIR/fernet-keys" "$KS_DIR/credential-keys" "$PASSWORDS"
  ensure_passwords
  write_keystone_conf
  load_passwords
  OS_BOOTSTRAP_PASSWORD=${PW[admin]} \
    "$VENV/bin/python" "$HELPERS/keystone_setup.py" "$KS_DIR/keystone.conf" "$KEYSTONE_URL/" "$REGION" \
    >>"$S/logs/keystone-setup.log" 2>&1 || fail_component keystone-setup "failed"
  touch "$KS_DIR/.setup-done"
}

start_keystone() {
  is_running keystone && return 0
  [[ -f $KS_DIR/.setup-done ]] || die "keystone is not set up: run tools/stack.sh start"
  port_busy "$KEYSTONE_PORT" && die "port $KEYSTONE_PORT is in use by a process this stack did not start"
  write_keystone_conf
  launch keystone env OS_KEYSTONE_CONFIG_DIR="$KS_DIR" OS_KEYSTONE_CONFIG_FILES=keystone.conf \
    "$VENV/bin/gunicorn" --workers 1 --worker-class sync --bind "$HOST:$KEYSTONE_PORT" \
    --timeout 120 --graceful-timeout 5 --pythonpath "$HELPERS" --access-logfile - \
    keystone_wsgi:application
  say "started keystone (pid $(recorded_pid keystone))"
}

wait_keystone() { wait_http keystone "$KEYSTONE_URL" 90; }

# ---- seeding (idempotent: look up by name, create only what is missing)
ADMIN_HDR=$S/run/admin-token.hdr

keystone_login_admin() {
  local body hdrs token
  body=$(jq -nc --arg pw "${PW[admin]}" \
    '{auth:{identity:{methods:["password"],password:{user:{name:"admin",domain:{id:"default"},password:$pw}}},
      scope:{project:{name:"admin",domain:{id:"default"}}}}}')
  hdrs=$(curl -sS --max-time 30 -o /dev/null -D - -H 'Content-Type: application/json' \
    --data @- "$KEYSTONE_URL/auth/tokens" <<<"$body") || fail_component keystone "admin login: no answer"
  token=$(awk 'tolower($1) == "x-subject-token:" { print $2 }' <<<"$hdrs" | tr -d '\r')
  [[ -n $token ]] || fail_component keystone "admin login failed: $(head -n1 <<<"$hdrs")"
  (umask 077 && printf 'X-Auth-Token: %s\n' "$token" >"$ADMIN_HDR")
}

# ks METHOD PATH [JSON]: call Keystone as admin, print the body, die on >= 400.
ks() {
  local out code
  local -a args=(-sS --max-time 30 -X "$1" -H "@$ADMIN_HDR" -H 'Content-Type: application/json' -w '\n%{http_code}')
  if (($# > 2)); then args+=(--data "$3"); fi
  out=$(curl "${args[@]}" "$KEYSTONE_URL$2") || die "keystone $1 $2: no answer"
  code=${out##*$'\n'}
  out=${out%$'\n'*}
  [[ $code == 2* ]] || die "keystone $1 $2: HTTP $code: $out"
  printf '%s' "$out"
}

# name_ids JSON KEY: print "name id" lines of the objects in JSON's array KEY.
name_ids() { jq -r --arg k "$2" '.[$k][] | "\(.name) \(.id)"' <<<"$1"; }

# ensure_named KIND NAME BODY: create a project/role/user named NAME unless
# the map named KIND_id already has it; records the new id in that map.
ensure_named() {
  local kind=$1 name=$2 body=$3 id
  local -n map="${kind}_id"
  [[ -n ${map[$name]-} ]] && return 0
  id=$(ks POST "/${kind}s" "$body" | jq -r ".${kind}.id")
  map["$name"]=$id
  say "created $kind $name"
}

# Seed projects, users, roles, role assignments and the metric-storage
# service with its endpoints.  Idempotent and cheap when nothing is missing:
# a handful of list calls, then only the missing objects are created.
# Leaves the ids in $S/ids.json.
seed_keystone() {
  local -A project_id=() role_id=() user_id=() have=()
  local out name id entry project roles r svc iface region url lines=()
  keystone_login_admin

  out=$(ks GET "/projects?domain_id=default")
  while read -r name id; do project_id[$name]=$id; done < <(name_ids "$out" projects)
  for name in admin service demo other; do
    ensure_named project "$name" "$(jq -nc --arg n "$name" '{project:{name:$n,domain_id:"default",description:"aetos local stack"}}')"
  done

  out=$(ks GET /roles)
  while read -r name id; do role_id[$name]=$id; done < <(name_ids "$out" roles)
  for name in reader member admin service; do
    ensure_named role "$name" "$(jq -nc --arg n "$name" '{role:{name:$n}}')"
  done

  out=$(ks GET "/users?domain_id=default")
  while read -r name id; do user_id[$name]=$id; done < <(name_ids "$out" users)
  out=$(ks GET /role_assignments)
  while read -r entry; do have[$entry]=1; done < <(jq -r \
    '.role_assignments[] | select(.user and .scope.project) | "\(.user.id) \(.scope.project.id) \(.role.id)"' <<<"$out")
  for entry in "${USERS[@]}"; do
    read -r name project roles <<<"$entry"
    ensure_named user "$name" "$(jq -nc --arg n "$name" --arg p "${PW[$name]}" \
      '{user:{name:$n,password:$p,domain_id:"default",enabled:true}}')"
    if [[ $project != - ]]; then
      for r in ${roles//,/ }; do
        [[ -n ${have["${user_id[$name]} ${project_id[$project]} ${role_id[$r]}"]-} ]] && continue
        ks PUT "/projects/${project_id[$project]}/users/${user_id[$name]}/roles/${role_id[$r]}" >/dev/null
        say "granted $r on $project to $name"
      done
    fi
    lines+=("$name ${user_id[$name]} $project $roles")
  done

  out=$(ks GET "/services?type=metric-storage")
  svc=$(jq -r '[.services[] | select(.name == "aetos")][0].id // empty' <<<"$out")
  if [[ -z $svc ]]; then
    svc=$(ks POST /services '{"service":{"type":"metric-storage","name":"aetos","description":"Prometheus through aetos","enabled":true}}' |
      jq -r .service.id)
    say "created service aetos (metric-storage)"
  fi
  local -A endpoint=()
  out=$(ks GET "/endpoints?service_id=$svc")
  while read -r iface region id url; do
    [[ $region == "$REGION" ]] && endpoint[$iface]="$id $url"
  done < <(jq -r '.endpoints[] | "\(.interface) \(.region_id) \(.id) \(.url)"' <<<"$out")
  for iface in public internal admin; do
    if [[ -z ${endpoint[$iface]-} ]]; then
      ks POST /endpoints "$(jq -nc --arg s "$svc" --arg i "$iface" --arg u "$AETOS_URL" --arg r "$REGION" \
        '{endpoint:{service_id:$s,interface:$i,url:$u,region_id:$r,enabled:true}}')" >/dev/null
      say "created $iface metric-storage endpoint"
    elif [[ ${endpoint[$iface]#* } != "$AETOS_URL" ]]; then
      ks PATCH "/endpoints/${endpoint[$iface]%% *}" "$(jq -nc --arg u "$AETOS_URL" '{endpoint:{url:$u}}')" >/dev/null
      say "updated $iface metric-storage endpoint to $AETOS_URL"
    fi
  done
  rm -f "$ADMIN_HDR"

  printf '%s\n' "${lines[@]}" | jq -R -s \
    --arg a "${project_id[admin]}" --arg s "${project_id[service]}" \
    --arg d "${project_id[demo]}" --arg o "${project_id[other]}" \
    '{projects:{admin:$a, service:$s, demo:$d, other:$o},
      users:(split("\n") | map(select(length > 0) | split(" ")
             | {key:.[0], value:{id:.[1], project:(if .[2] == "-" then null else .[2] end),
                                 roles:(if .[3] == "-" then [] else (.[3] | split(",")) end)}})
             | from_entries)}' >"$S/ids.json.tmp"
  mv "$S/ids.json.tmp" "$S/ids.json"
  say "keystone seeded"
}

# ---------------------------------------------------------------- memcached
start_memcached() {
  is_running memcached && return 0
  port_busy "$MEMCACHED_PORT" && die "port $MEMCACHED_PORT is in use by a process this stack did not start"
  local -a user=()
  if [[ $(id -u) == 0 ]]; then user=(-u "$(id -un memcache 2>/dev/null || echo nobody)"); fi
  launch memcached memcached -l "$HOST" -p "$MEMCACHED_PORT" -U 0 -m 64 "${user[@]}"
  say "started memcached (pid $(recorded_pid memcached))"
}

wait_memcached() {
  local deadline=$(($(now_ms) + 10000))
  until memcached_answers; do
    is_running memcached || fail_component memcached "exited during startup"
    (($(now_ms) < deadline)) || fail_component memcached "not answering after 10 s"
    sleep 0.1
  done
}

# ---------------------------------------------------------------- prometheus
prom_config() {
  local name=$1
  cat <<EOF
# Written by tools/stack.sh ($name)
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 15s
EOF
  case $name in
    prometheus-ha-1 | prometheus-ha-2)
      printf '  external_labels:\n    replica: "%s"\n' "${name#prometheus-ha-}"
      ;;
  esac
  cat <<EOF
storage:
  tsdb:
    # Accept the remote-written differential data set (timestamps in the past).
    out_of_order_time_window: 30d
EOF
  case $name in
    prometheus-a)
      printf '# Only the differential data set of project A (remote write); nothing is scraped.\nscrape_configs: []\n'
      ;;
    prometheus)
      cat <<EOF
# Alerts on the stack's data, evaluated every second (rules.yml), sent to
# the stack's Alertmanager.
rule_files: ["$S/prometheus/${PROM_DIR[prometheus]}/rules.yml"]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["$HOST:$ALERTMANAGER_PORT"]
scrape_configs:
  - job_name: prometheus
    scrape_interval: 5s
    scrape_timeout: 5s
    static_configs:
      - targets: ["$HOST:${PROM_PORT[prometheus]}"]
  # The other project's own exporter (tools/stack/exporter.py OTHER_TARGET):
  # HELP text that must never reach another project's metadata.
  - job_name: exporter-other
    metrics_path: /other/metrics
    static_configs:
      - targets: ["$HOST:$EXPORTER_PORT"]
  # node_exporter's targets as Watcher expects them: its datasource maps
  # hosts from the fqdn label of the active targets.  The node_* series come
  # from the shared exporter; these targets expose no sample (NODE_TARGET).
  - job_name: node
    metrics_path: /node/metrics
    static_configs:
      - targets: ["$HOST:$EXPORTER_PORT"]
        labels: {fqdn: compute-0.localdomain}
      - targets: ["$HOST:$EXPORTER_PORT"]
        labels: {fqdn: compute-1.localdomain}
EOF
      ;;
    *) printf 'scrape_configs:\n' ;;
  esac
  if [[ $name != prometheus-a ]]; then
    cat <<EOF
  - job_name: exporter
    honor_labels: true
    static_configs:
      - targets: ["$HOST:$EXPORTER_PORT"]
EOF
  fi
}

# The main Prometheus' alerting rules: alerts that fire at once for each
# project's instances (labels from the series: project, resource_name, ...)
# and one without any project label, which no project may see.
prom_rules() {
  cat <<'EOF'
# Written by tools/stack.sh: alerts on the exporter's data, for the
# Alertmanager tenancy tests (tests/functional_alertmanager.rs).
groups:
  - name: aetos-stack
    interval: 1s
    rules:
      - alert: AetosStackInstanceBusy
        expr: ceilometer_cpu > 0
        for: 0s
        labels:
          severity: info
        annotations:
          summary: "instance {{ $labels.resource_name }} of project {{ $labels.project_name }} uses CPU"
      - alert: AetosStackProjectUp
        expr: count by (project, project_name) (ceilometer_cpu) > 0
        for: 0s
        labels:
          severity: info
      - alert: AetosStackWithoutProject
        expr: vector(1)
        for: 0s
        labels:
          severity: info
EOF
}

# Write a file from stdin; true when its content changed.
write_changed() {
  local file=$1
  cat >"$file.tmp"
  if cmp -s "$file.tmp" "$file"; then
    rm -f "$file.tmp"
    return 1
  fi
  mv "$file.tmp" "$file"
}

# Write the config; reload a running instance when it changed.
write_prom_config() {
  local name=$1 dir="$S/prometheus/${PROM_DIR[$1]}" changed=0
  mkdir -p "$dir/data"
  if [[ $name == prometheus ]] && prom_rules | write_changed "$dir/rules.yml"; then changed=1; fi
  if prom_config "$name" | write_changed "$dir/prometheus.yml"; then changed=1; fi
  ((changed)) || return 0
  if is_running "$name"; then
    curl -fsS -o /dev/null -X POST "http://$HOST:${PROM_PORT[$name]}/-/reload" ||
      fail_component "$name" "rejected the new configuration"
    say "reloaded $name configuration"
  fi
}

start_prom() {
  local name=$1 port=${PROM_PORT[$1]} dir="$S/prometheus/${PROM_DIR[$1]}"
  write_prom_config "$name"
  is_running "$name" && return 0
  port_busy "$port" && die "port $port is in use by a process this stack did not start (Debian's prometheus service?)"
  # Alerts are resent every 2 s (not 1 min): those evaluated before the
  # notifier has found Alertmanager reach it within seconds of a start.
  launch "$name" prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --web.listen-address="$HOST:$port" --web.enable-admin-api --web.enable-lifecycle \
    --web.enable-remote-write-receiver --rules.alert.resend-delay=2s
  say "started $name on port $port (pid $(recorded_pid "$name"))"
}

wait_prom() { wait_http "$1" "http://$HOST:${PROM_PORT[$1]}/-/ready" 60; }

# prom_query PORT QUERY [TIME]: print the first result's value, or nothing.
prom_query() {
  local -a args=(--data-urlencode "query=$2")
  if (($# > 2)); then args+=(--data-urlencode "time=$3"); fi
  curl -fsS --max-time 5 -G "${args[@]}" "http://$HOST:$1/api/v1/query" | jq -r '.data.result[0].value[1] // empty'
}

# ---------------------------------------------------------------- alertmanager
AM_DIR=$S/alertmanager

# One receiver that notifies nobody: the alerts are read through the API.
am_config() {
  cat <<'EOF'
# Written by tools/stack.sh
route:
  receiver: stack
  group_by: [alertname, project]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: stack
EOF
}

start_alertmanager() {
  mkdir -p "$AM_DIR/data"
  am_config | write_changed "$AM_DIR/alertmanager.yml" || true
  if is_running alertmanager; then
    curl -fsS -o /dev/null -X POST "http://$HOST:$ALERTMANAGER_PORT/-/reload" ||
      fail_component alertmanager "rejected its configuration"
    return 0
  fi
  port_busy "$ALERTMANAGER_PORT" && die "port $ALERTMANAGER_PORT is in use by a process this stack did not start (Debian's prometheus-alertmanager service?)"
  launch alertmanager prometheus-alertmanager --config.file="$AM_DIR/alertmanager.yml" \
    --storage.path="$AM_DIR/data" --web.listen-address="$HOST:$ALERTMANAGER_PORT" \
    --cluster.listen-address=
  say "started alertmanager on port $ALERTMANAGER_PORT (pid $(recorded_pid alertmanager))"
}

wait_alertmanager() { wait_http alertmanager "http://$HOST:$ALERTMANAGER_PORT/-/ready" 30; }

# ---------------------------------------------------------------- victoriametrics
VM_DIR=$S/victoriametrics

# The same exporter job as the stack's Prometheus (honor_labels: the
# exporter's project labels are kept), so both hold the same live series.
vm_scrape_config() {
  cat <<EOF
# Written by tools/stack.sh: VictoriaMetrics scrapes what Prometheus scrapes.
global:
  scrape_interval: 5s
scrape_configs:
  - job_name: exporter
    honor_labels: true
    static_configs:
      - targets: ["$HOST:$EXPORTER_PORT"]
EOF
}

start_victoriametrics() {
  mkdir -p "$VM_DIR/data"
  vm_scrape_config | write_changed "$VM_DIR/scrape.yml" || true
  # A running one re-reads a changed file (-promscrape.configCheckInterval).
  is_running victoriametrics && return 0
  port_busy "$VM_PORT" && die "port $VM_PORT is in use by a process this stack did not start (Debian's victoria-metrics service?)"
  launch victoriametrics victoria-metrics -httpListenAddr="$HOST:$VM_PORT" \
    -storageDataPath="$VM_DIR/data" -promscrape.config="$VM_DIR/scrape.yml" \
    -promscrape.configCheckInterval=5s -search.latencyOffset=0s
  say "started victoriametrics on port $VM_PORT (pid $(recorded_pid victoriametrics))"
}

wait_victoriametrics() { wait_http victoriametrics "http://$HOST:$VM_PORT/health" 30; }

# ---------------------------------------------------------------- exporter
write_exporter_ids() {
  local dir=$S/exporter
  mkdir -p "$dir"
  jq '{projects:{demo:.projects.demo, other:.projects.other},
       users:{demo:.users["demo-member"].id, other:.users["other-member"].id}}' "$S/ids.json" >"$dir/projects.json.tmp"
  mv "$dir/projects.json.tmp" "$dir/projects.json"
  # NODE_TARGET: the (sample-less) exposition of the node job's targets,
  # served by the exporter's file server like everything in its directory.
  mkdir -p "$dir/node"
  printf '# node_exporter targets of the stack: their node_* series come from the shared exporter\n' >"$dir/node/metrics"
}

start_exporter() {
  is_running exporter && return 0
  [[ -f $S/exporter/projects.json ]] || die "exporter has no project ids yet: run tools/stack.sh start"
  port_busy "$EXPORTER_PORT" && die "port $EXPORTER_PORT is in use by a process this stack did not start"
  launch exporter "$VENV/bin/python" -u "$HELPERS/exporter.py" --dir "$S/exporter" --port "$EXPORTER_PORT"
  say "started exporter on port $EXPORTER_PORT (pid $(recorded_pid exporter))"
}

wait_exporter() {
  local deadline=$(($(now_ms) + 15000)) body
  while :; do
    body=$(curl -fsS --max-time 2 "http://$HOST:$EXPORTER_PORT/metrics" 2>/dev/null || true)
    [[ $body == *ceilometer_cpu* ]] && return 0
    is_running exporter || fail_component exporter "exited during startup"
    (($(now_ms) < deadline)) || fail_component exporter "not serving metrics after 15 s"
    sleep 0.1
  done
}

# Wait until the live series of the demo project are scraped by main and HA.
wait_scraped() {
  local demo name deadline=$(($(now_ms) + 30000))
  demo=$(jq -r .projects.demo "$S/ids.json")
  for name in prometheus prometheus-ha-1 prometheus-ha-2; do
    until [[ $(prom_query "${PROM_PORT[$name]}" "count(ceilometer_cpu{project=\"$demo\"})" 2>/dev/null || true) == 2 ]]; do
      (($(now_ms) < deadline)) || fail_component "$name" "has not scraped the exporter after 30 s"
      sleep 0.2
    done
  done
  say "live series scraped by main and HA"
}

# ---------------------------------------------------------------- diff data
DIFF_JSON=$S/diff.json

# new_diff_window: choose end = now rounded down to the minute - 5 min.
new_diff_window() {
  local now end
  now=$(date +%s)
  end=$((now / 60 * 60 - 300))
  jq -n --argjson e "$end" --argjson s $((end - 3600)) --argjson st "$DIFF_STEP" \
    '{start:$s, end:$e, eval_time:$e, step:$st}' >"$DIFF_JSON.tmp"
  mv "$DIFF_JSON.tmp" "$DIFF_JSON"
}

# diff_data COMMAND: run diff_data.py against main and only-A for diff.json's end.
diff_data() {
  "$VENV/bin/python" "$HELPERS/diff_data.py" "$1" --end "$(jq -r .end "$DIFF_JSON")" \
    --main "http://$HOST:${PROM_PORT[prometheus]}" --only-a "http://$HOST:${PROM_PORT[prometheus-a]}" \
    >>"$S/logs/diff-data.log" 2>&1
}

# Record the data set's metric names in diff.json (for env.json).
diff_record_metrics() {
  local metrics
  metrics=$("$VENV/bin/python" "$HELPERS/diff_data.py" metrics)
  jq --argjson m "$metrics" '.metrics = $m' "$DIFF_JSON" >"$DIFF_JSON.tmp"
  mv "$DIFF_JSON.tmp" "$DIFF_JSON"
}

# Make main and only-A hold exactly the differential data set of diff.json,
# pushing it when absent.  When what they hold conflicts with it (older
# generator, deleted series), their data directories are wiped and the set
# is pushed anew with a fresh time window.
ensure_diff_data() {
  local rc=0 p
  if [[ ! -f $DIFF_JSON ]] || (($(date +%s) - $(jq -r .end "$DIFF_JSON") > DIFF_MAX_AGE)); then
    new_diff_window
  fi
  diff_data check || rc=$?
  if ((rc == 0)); then
    say "differential data set present (end $(jq -r .end "$DIFF_JSON"))"
    [[ $(jq -r 'has("metrics")' "$DIFF_JSON") == true ]] || diff_record_metrics
    return 0
  fi
  ((rc == 3)) || fail_component diff-data "check failed"
  say "pushing the differential data set (remote write, end $(jq -r .end "$DIFF_JSON"))"
  if diff_data push; then
    diff_record_metrics
    say "differential data set pushed and verified"
    return 0
  fi
  say "main/only-A hold conflicting differential data: wiping their data and pushing anew"
  for p in prometheus prometheus-a; do
    stop_proc "$p"
    rm -rf "$S/prometheus/${PROM_DIR[$p]}/data"
    start_prom "$p"
  done
  for p in prometheus prometheus-a; do wait_prom "$p"; done
  new_diff_window
  diff_data push || fail_component diff-data "push or verification failed"
  diff_record_metrics
  say "differential data set pushed and verified (end $(jq -r .end "$DIFF_JSON"))"
}

# ---------------------------------------------------------------- outputs
write_clouds_yaml() {
  local out=$S/clouds.yaml entry name project _roles
  {
    printf '# Written by tools/stack.sh: one cloud per user of the local stack.\nclouds:\n'
    for entry in "${USERS[@]}"; do
      read -r name project _roles <<<"$entry"
      printf '  %s:\n    auth:\n      auth_url: "%s"\n      username: "%s"\n      password: "%s"\n      user_domain_name: "Default"\n' \
        "$name" "$KEYSTONE_URL" "$name" "${PW[$name]}"
      if [[ $project != - ]]; then
        printf '      project_name: "%s"\n      project_domain_name: "Default"\n' "$project"
      fi
      printf '    auth_type: "password"\n    region_name: "%s"\n    interface: "public"\n    identity_api_version: 3\n' "$REGION"
    done
  } >"$out.tmp"
  chmod 600 "$out.tmp"
  mv "$out.tmp" "$out"
}

write_env_json() {
  jq -n \
    --arg ks "$KEYSTONE_URL" --arg region "$REGION" \
    --arg prom "http://$HOST:${PROM_PORT[prometheus]}" \
    --arg prom_a "http://$HOST:${PROM_PORT[prometheus-a]}" \
    --arg ha1 "http://$HOST:${PROM_PORT[prometheus-ha-1]}" \
    --arg ha2 "http://$HOST:${PROM_PORT[prometheus-ha-2]}" \
    --arg mc "$HOST:$MEMCACHED_PORT" --arg aetos "$AETOS_URL" \
    --arg vm "http://$HOST:$VM_PORT" \
    --arg am "http://$HOST:$ALERTMANAGER_PORT" --arg amtool "$(command -v amtool || echo amtool)" \
    --arg venv "$VENV/bin" --arg consumers_venv "$CONSUMERS_VENV/bin" --arg clouds "$S/clouds.yaml" \
    --arg exporter "http://$HOST:$EXPORTER_PORT/metrics" --arg state "$S" \
    --slurpfile ids "$S/ids.json" --slurpfile pw "$PASSWORDS" --slurpfile diff "$DIFF_JSON" \
    --arg watcher_uuid "$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import exporter; print(exporter.resource_id("demo-vm-1"))' "$HELPERS")" \
    '{
      keystone_url: $ks, region: $region,
      prometheus_url: $prom, prometheus_only_a_url: $prom_a,
      prometheus_ha_urls: [$ha1, $ha2],
      alertmanager_url: $am, amtool: $amtool, victoriametrics_url: $vm,
      memcached: $mc, aetos_url: $aetos,
      venv_bin: $venv, consumers_venv_bin: $consumers_venv, clouds_yaml: $clouds,
      projects: $ids[0].projects,
      users: ($ids[0].users | with_entries(.value = {id: .value.id, password: $pw[0][.key],
                                                      project: .value.project, roles: .value.roles})),
      diff: {label: "project", project_a: "diff-a", project_b: "diff-b",
             start: $diff[0].start, end: $diff[0].end, eval_time: $diff[0].eval_time,
             step: $diff[0].step, metrics: $diff[0].metrics},
      exporter_url: $exporter, state_dir: $state,
      watcher: {host: "compute-0.localdomain", instance_uuid: $watcher_uuid}
    }' >"$S/env.json.tmp"
  mv "$S/env.json.tmp" "$S/env.json"
}

# ---------------------------------------------------------------- commands
lock_state() {
  mkdir -p "$S"
  exec 9>"$S/.lock"
  flock -w 600 9 || die "another tools/stack.sh holds $S/.lock"
}

procs_of() {
  case $1 in
    prometheus-ha) echo prometheus-ha-1 prometheus-ha-2 ;;
    memcached | keystone | prometheus | prometheus-a | prometheus-ha-1 | prometheus-ha-2 | alertmanager | exporter | victoriametrics) echo "$1" ;;
    *) die "unknown component '$1' (one of: $COMPONENTS)" ;;
  esac
}

start_component() {
  local p
  case $1 in
    memcached)
      start_memcached
      wait_memcached
      ;;
    keystone)
      start_keystone
      wait_keystone
      ;;
    prometheus | prometheus-a | prometheus-ha | prometheus-ha-1 | prometheus-ha-2)
      for p in $(procs_of "$1"); do start_prom "$p"; done
      for p in $(procs_of "$1"); do wait_prom "$p"; done
      ;;
    alertmanager)
      start_alertmanager
      wait_alertmanager
      ;;
    exporter)
      start_exporter
      wait_exporter
      ;;
    victoriametrics)
      start_victoriametrics
      wait_victoriametrics
      ;;
    *) procs_of "$1" >/dev/null ;;
  esac
  say "$1 is up"
}

stop_component() {
  local p
  for p in $(procs_of "$1"); do stop_proc "$p"; done
}

cmd_start() {
  local p
  lock_state
  say "state directory $S"
  cmd_install
  mkdir -p "$S/run" "$S/logs"
  start_memcached
  start_alertmanager
  start_victoriametrics
  for p in prometheus prometheus-a prometheus-ha-1 prometheus-ha-2; do start_prom "$p"; done
  keystone_setup
  load_passwords
  start_keystone
  wait_memcached
  for p in prometheus prometheus-a prometheus-ha-1 prometheus-ha-2; do wait_prom "$p"; done
  wait_alertmanager
  wait_victoriametrics
  ensure_diff_data
  wait_keystone
  seed_keystone
  write_exporter_ids
  start_exporter
  wait_exporter
  wait_scraped
  write_clouds_yaml
  write_env_json
  say "stack ready: $S/env.json"
}

cmd_stop() {
  local p
  [[ -d $S ]] || return 0
  lock_state
  for p in exporter victoriametrics prometheus-ha-2 prometheus-ha-1 prometheus-a prometheus alertmanager keystone memcached; do
    stop_proc "$p"
  done
  say "stack stopped"
}

# Print one line per process; sets STATUS_RC to 0 when all run, else 3.
STATUS_RC=0
cmd_status() {
  local c p pid
  for c in $COMPONENTS; do
    for p in $(procs_of "$c"); do
      if is_running "$p"; then
        pid=$(recorded_pid "$p")
        printf '%-16s running (pid %s)\n' "$p" "$pid"
      else
        printf '%-16s stopped\n' "$p"
        STATUS_RC=3
      fi
    done
  done
}

main() {
  (($# >= 1)) || usage
  local cmd=$1
  shift
  case $cmd in
    install)
      lock_state
      cmd_install
      ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status)
      cmd_status
      exit "$STATUS_RC"
      ;;
    env)
      [[ -f $S/env.json ]] || die "no $S/env.json: run tools/stack.sh start"
      cat "$S/env.json"
      ;;
    stop-component | start-component | restart)
      (($# == 1)) || usage
      procs_of "$1" >/dev/null
      lock_state
      case $cmd in
        stop-component) stop_component "$1" ;;
        start-component) start_component "$1" ;;
        restart)
          stop_component "$1"
          start_component "$1"
          ;;
      esac
      ;;
    -h | --help | help) usage ;;
    *) usage ;;
  esac
}

main "$@"
