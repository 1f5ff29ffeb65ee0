#!/usr/bin/env bash
# Runs the image that tools/image.sh built against the real local stack.
# No container engine can start containers on this machine, so the test
# does what one would do with the image and nothing more: unpack it
# (umoci), give the root filesystem what a runtime or Kubernetes mounts
# into it (/etc/hosts and /etc/resolv.conf, and the device nodes of /dev,
# as the runtime does; /etc/aetos/aetos.conf as the ConfigMap does; no
# /proc), and start the image's own
# entry point and command as the image's user, chrooted into a read-only
# view of the rootfs, with no environment but the Secret's file name.
# Then real requests with Keystone tokens:
#
#   * no token: 401 with WWW-Authenticate (Keystone authentication is on);
#   * an admin token: `ceilometer_cpu` answers the same series as
#     Prometheus asked directly (privileged, forwarded unchanged);
#   * a project reader's token: only its project's series, as many as
#     Prometheus has for that project (scoped);
#   * the process runs as the image's non-root user, and no token is in its
#     log.
#
# aetos is configured as deploy/kubernetes/base runs it: the Keystone
# password is a file of a Secret (/run/secrets/aetos, group-readable by the
# image's group as with fsGroup) named by OS_KEYSTONE_AUTHTOKEN__PASSWORD_FILE,
# and the kubelet's probes and Prometheus' scrape use the internal listener
# ([api] internal_listen): /-/healthy, /-/ready and /metrics answer there
# without a token, and /-/ready on the API port too.
#
# Keystone and Prometheus are named `localhost` in aetos.conf, so the static
# binary resolves a name through /etc/hosts (getaddrinfo in a static glibc,
# with no NSS module in the image, only its /etc/nsswitch.conf).
#
#   tools/image-test.sh [OCI_DIR]     # default target/image/oci
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
oci=${1:-target/image/oci}
env_json=${AETOS_STACK_DIR:-$root/.stack}/env.json
[[ -f $env_json ]] || { echo "image-test: no $env_json: run tools/stack.sh start" >&2; exit 1; }
[[ -d $oci ]] || { echo "image-test: no image at $oci: run tools/image.sh" >&2; exit 1; }
if ! command -v umoci >/dev/null 2>&1; then
  echo "image-test: installing umoci" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends umoci >/dev/null
fi
jqr() { jq -r "$1" "$env_json"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/aetos-image-test.XXXXXX")
pid=
cleanup() {
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  # Unmount the read-only view before removing anything.
  if mountpoint -q "$work/ro" 2>/dev/null; then umount "$work/ro" || umount -l "$work/ro"; fi
  rm -rf "$work"
}
trap cleanup EXIT

passed=0
failed=0
check() { # NAME COMMAND...: one named assertion
  local name=$1
  shift
  if "$@"; then
    echo "ok   $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name" >&2
    failed=$((failed + 1))
  fi
}

umoci unpack --image "$oci:aetos-api:latest" "$work/bundle" >/dev/null
rootfs=$work/bundle/rootfs
spec=$work/bundle/config.json
mapfile -t args < <(jq -r '.process.args[]' "$spec")
uid=$(jq -r '.process.user.uid' "$spec")
gid=$(jq -r '.process.user.gid' "$spec")
check "the image's user is not root ($uid:$gid)" test "$uid" -ne 0 -a "$gid" -ne 0
check "the image holds no shell" test ! -e "$rootfs/bin/sh" -a ! -e "$rootfs/usr/bin/sh"
no_library() { [[ -z $(find "$rootfs" -name '*.so*') ]]; }
check "the image holds no shared library" no_library
check "the image looks names up in /etc/hosts first" grep -qx 'hosts: files dns' "$rootfs/etc/nsswitch.conf"
check "the image holds the CA bundle" grep -q 'BEGIN CERTIFICATE' "$rootfs/etc/ssl/certs/ca-certificates.crt"
check "the entry point reads /etc/aetos/aetos.conf (${args[*]})" \
  test "${args[*]}" = "/usr/bin/aetos-api --config-file /etc/aetos/aetos.conf"

# What the runtime and the ConfigMap would mount. aetos needs /dev/urandom
# (a static binary's getrandom falls back to it).
cp /etc/hosts /etc/resolv.conf "$rootfs/etc/"
mkdir -p "$rootfs/dev"
for dev in null:3 zero:5 full:7 random:8 urandom:9; do
  mknod -m 0666 "$rootfs/dev/${dev%:*}" c 1 "${dev#*:}"
done
grep -qE '^127\.0\.0\.1[[:space:]].*\blocalhost\b' "$rootfs/etc/hosts" \
  || { echo "image-test: this machine's /etc/hosts does not name localhost" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
iport=$(free_port)
ks=$(jqr .keystone_url)
ks=${ks/127.0.0.1/localhost}
prom=$(jqr .prometheus_url)
cat >"$rootfs/etc/aetos/aetos.conf" <<CONF
[DEFAULT]
auth_mode = keystone

[api]
host = 127.0.0.1
port = $port
internal_listen = 127.0.0.1:$iport

[prometheus]
url = ${prom/127.0.0.1/localhost}

[keystone_authtoken]
www_authenticate_uri = $ks
auth_url = $ks
auth_type = password
username = aetos
user_domain_id = default
project_name = service
project_domain_id = default
CONF
chmod 0644 "$rootfs/etc/aetos/aetos.conf"
# The Secret's file, as the kubelet writes it with fsGroup and mode 0440.
password=$(jqr '.users.aetos.password')
secrets=$rootfs/run/secrets/aetos
mkdir -p "$secrets"
printf '%s' "$password" >"$secrets/keystone-password"
chown "0:$gid" "$secrets/keystone-password"
chmod 0440 "$secrets/keystone-password"

# readOnlyRootFilesystem: the process sees the root filesystem read-only
# (a read-only bind mount of it), /tmp included.
mkdir "$work/ro"
mount --bind "$rootfs" "$work/ro"
mount -o remount,bind,ro "$work/ro"
read_only() { ! touch "$work/ro/etc/aetos/probe" 2>/dev/null; }
check "the root filesystem it runs on is read-only" read_only

log=$work/aetos.log
env -i OS_KEYSTONE_AUTHTOKEN__PASSWORD_FILE=/run/secrets/aetos/keystone-password \
  "$(command -v chroot)" --userspec="$uid:$gid" "$work/ro" "${args[@]}" >"$log" 2>&1 &
pid=$!
url=http://127.0.0.1:$port
internal=http://127.0.0.1:$iport
# As the kubelet's readiness probe does.
for _ in $(seq 100); do
  curl -sf "$internal/-/ready" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.2
done
if ! curl -sf "$internal/-/ready" >/dev/null 2>&1; then
  echo "image-test: the image's aetos-api did not come up; its log:" >&2
  cat "$log" >&2
  exit 1
fi
answers() { # URL STATUS: an unauthenticated GET gets STATUS
  local got
  got=$(curl -s -o /dev/null -w '%{http_code}' "$1")
  [[ $got == "$2" ]] || { echo "image-test: $1 answered $got, not $2" >&2; return 1; }
}
check "internal listener: /-/healthy, no token" answers "$internal/-/healthy" 200
check "internal listener: /-/ready, no token" answers "$internal/-/ready" 200
check "API port: /-/ready, no token" answers "$url/-/ready" 200
check "internal listener: nothing but the probes and /metrics" answers "$internal/api/v1/query?query=up" 404
check "the process runs as uid $uid" grep -qE "^Uid:[[:space:]]+${uid}[[:space:]]" "/proc/$pid/status"

token() { # USER: a project-scoped Keystone token of a stack user
  local user=$1 project
  project=$(jqr ".users[\"$user\"].project")
  jq -n --arg u "$user" --arg p "$(jqr ".users[\"$user\"].password")" --arg proj "$project" \
    '{auth: {identity: {methods: ["password"], password: {user: {name: $u, domain: {id: "default"}, password: $p}}},
             scope: {project: {name: $proj, domain: {id: "default"}}}}}' \
    | curl -sf -D - -o /dev/null -H 'Content-Type: application/json' --data @- "$(jqr .keystone_url)/auth/tokens" \
    | tr -d '\r' | awk 'tolower($1) == "x-subject-token:" {print $2}'
}
series() { jq -c '[.data.result[].metric] | sort' 2>/dev/null || echo "not a Prometheus answer"; }
via() { # TOKEN: ceilometer_cpu through the image's aetos; the log on an error
  local body
  body=$(curl -s -H "X-Auth-Token: $1" "$url/api/v1/query?query=ceilometer_cpu")
  jq -e '.status == "success"' <<<"$body" >/dev/null 2>&1 \
    || echo "image-test: aetos answered: ${body:0:300}" >&2
  series <<<"$body"
}
matches() { # VIA DIRECT: the same series, and some
  [[ $1 == "$2" && $2 != "[]" ]] || { echo "image-test: got $1, Prometheus has $2" >&2; return 1; }
}

status=$(curl -s -o "$work/unauth" -D "$work/unauth.h" -w '%{http_code}' "$url/api/v1/query?query=ceilometer_cpu")
check "no token: 401 from Keystone authentication" test "$status" = 401
check "no token: WWW-Authenticate names Keystone" grep -qi '^WWW-Authenticate: Keystone uri=' "$work/unauth.h"

admin=$(token admin) || true
reader=$(token demo-reader) || true
[[ -n $admin && -n $reader ]] || { echo "image-test: Keystone issued no token" >&2; exit 1; }
direct=$(curl -sf "$prom/api/v1/query?query=ceilometer_cpu" | series) || true
check "admin: Prometheus' answer ($(jq length <<<"$direct" 2>/dev/null) series)" matches "$(via "$admin")" "$direct"

demo=$(jqr .projects.demo)
direct=$(curl -sf --get --data-urlencode "query=ceilometer_cpu{project=\"$demo\"}" "$prom/api/v1/query" | series) || true
check "reader: only project demo's series ($(jq length <<<"$direct" 2>/dev/null))" matches "$(via "$reader")" "$direct"

no_token_logged() { ! grep -qF -e "$admin" -e "$reader" "$log"; }
check "no token in the log" no_token_logged
no_password_logged() { ! grep -qF -e "$password" "$log"; }
check "no password in the log" no_password_logged
scraped() { # (not curl | grep -q: grep's early exit would fail curl under pipefail)
  local m
  m=$(curl -sf "$internal/metrics") && grep -q '^aetos_requests_total{.*status="200"' <<<"$m"
}
check "internal listener: /metrics without a token counts the requests" scraped

kill "$pid"
wait "$pid" 2>/dev/null || true
pid=
echo "image: $passed passed, $failed failed"
((failed == 0))
