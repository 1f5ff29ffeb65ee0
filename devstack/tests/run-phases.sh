#!/usr/bin/env bash
# Run aetos' devstack plugin through every phase against stand-ins of the
# devstack functions it calls (devstack/tests/stand-ins.sh), in a temporary
# root, and print what it did: the calls log, the aetos.conf it wrote, the
# Apache site, tempest.conf, and the files left after unstack and clean.
#
# usage: devstack/tests/run-phases.sh [--workdir DIR]
#            [--binary PATH | --fake-cargo | --no-cargo]
#            [--keystone CLOUD [--discover-as CLOUD]]
#
#   --workdir DIR  keep the temporary root in DIR (created; must not exist
#                  or be empty) instead of a directory removed at exit
#   --binary PATH  install this aetos-api (AETOS_PREBUILT_BINARY); the
#                  default is devstack/tests/fake-aetos-api, so no cargo
#                  build is needed
#   --fake-cargo   no prebuilt binary: the install phase runs a stand-in
#                  cargo (recorded in the calls log) that "builds" the fake
#   --no-cargo     no prebuilt binary and no cargo anywhere: the install
#                  phase must stop with its explanation
#   --keystone CLOUD
#                  make the Keystone registrations for real, with the
#                  openstack CLI ($AETOS_HARNESS_OPENSTACK, default
#                  "openstack") as CLOUD (an admin) of $OS_CLIENT_CONFIG_FILE,
#                  in a temporary region that is deleted afterwards; then
#                  look the endpoint up as python-observabilityclient does
#                  (keystoneauth Adapter, service type metric-storage) for
#                  each interface, as --discover-as CLOUD (default: CLOUD),
#                  into discovered-endpoints
#
# AETOS_* variables in the environment act as local.conf settings (e.g.
# AETOS_USE_APACHE=False). Only AETOS_CONF_DIR and AETOS_BIN_DIR are forced
# into the temporary root. Nothing outside it is written.
#
# Like devstack, each of stack.sh, unstack.sh and clean.sh is its own shell
# that sources the settings and then plugin.sh once per phase; clean.sh runs
# the unstack phase first, as devstack's clean.sh does. The shells run with
# errexit, nounset and pipefail, so a failing command or a variable neither
# devstack nor the settings define stops the run.
#
# Layout of the root: calls.log (one "name<TAB>args..." line per call, with
# "#script<TAB>name" and "#phase<TAB>args" markers), after-stack/ (copies
# of aetos.conf, policy.yaml.sample, tempest.conf, apache-aetos.conf and
# run-aetos-api as they were when stack.sh finished), state-after-<script>
# (every file and link under etc/, usr/ and run/).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
plugin_dir=$(cd "$here/.." && pwd)
repo=$(cd "$plugin_dir/.." && pwd)

workdir=""
binary="$here/fake-aetos-api"
mode=prebuilt
keystone_cloud=""
discover_cloud=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --workdir) workdir=${2:?--workdir needs a directory}; shift 2 ;;
        --binary) binary=${2:?--binary needs a path}; mode=prebuilt; shift 2 ;;
        --fake-cargo) mode=fake-cargo; shift ;;
        --no-cargo) mode=no-cargo; shift ;;
        --keystone) keystone_cloud=${2:?--keystone needs a cloud name}; shift 2 ;;
        --discover-as) discover_cloud=${2:?--discover-as needs a cloud name}; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "run-phases.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

if [[ -n "$workdir" ]]; then
    mkdir -p "$workdir"
    if [[ -n "$(ls -A "$workdir")" ]]; then
        echo "run-phases.sh: $workdir is not empty" >&2
        exit 2
    fi
    root=$(cd "$workdir" && pwd)
else
    root=$(mktemp -d "${TMPDIR:-/tmp}/aetos-devstack.XXXXXX")
fi

region=RegionOne
if [[ -n "$keystone_cloud" ]]; then
    openstack_cli=$(command -v "${AETOS_HARNESS_OPENSTACK:-openstack}") || {
        echo "run-phases.sh: --keystone needs the openstack CLI (set AETOS_HARNESS_OPENSTACK)" >&2
        exit 2
    }
    export AETOS_HARNESS_OPENSTACK=$openstack_cli
    export OS_CLOUD=$keystone_cloud
    : "${OS_CLIENT_CONFIG_FILE:?--keystone needs OS_CLIENT_CONFIG_FILE (clouds.yaml)}"
    discover_cloud=${discover_cloud:-$keystone_cloud}
    region=aetos-devstack-check-$$
fi

# Remove the temporary region (and its endpoints) and, unless kept, the root.
# Keystone may fail a call now and then under load: retry, and say so if the
# region could not be removed.
cleanup() {
    if [[ -n "$keystone_cloud" ]]; then
        local id attempt
        for attempt in 1 2 3; do
            for id in $("$openstack_cli" endpoint list --region "$region" -f value -c ID); do
                "$openstack_cli" endpoint delete "$id" || true
            done
            if "$openstack_cli" region delete "$region"; then
                break
            fi
            if [[ $attempt -eq 3 ]]; then
                echo "run-phases.sh: could not delete region $region from Keystone" >&2
            fi
            sleep 2
        done
    fi
    if [[ -z "$workdir" ]]; then
        rm -rf "$root"
    fi
}
trap cleanup EXIT
if [[ -n "$keystone_cloud" ]]; then
    "$openstack_cli" region create "$region" >/dev/null
fi

mkdir -p "$root"/etc/apache2/sites-available "$root"/etc/apache2/sites-enabled \
    "$root"/usr/local/bin "$root"/run "$root"/opt/stack/data \
    "$root"/opt/stack/tempest/etc "$root"/home "$root"/after-stack
: >"$root/calls.log"
export AETOS_HARNESS_ROOT=$root
export AETOS_HARNESS_CALLS=$root/calls.log

# What stack.sh, stackrc and lib/* define before plugins run (the values a
# single-node devstack on 10.0.0.10 would have).
cat >"$root/devstackrc" <<EOF
DEST=$root/opt/stack
DATA_DIR=$root/opt/stack/data
HOME=$root/home
STACK_USER=$(id -un)
ENABLED_SERVICES=key,mysql,rabbit,tempest
DISABLED_SERVICES=
OFFLINE=False
SERVICE_HOST=10.0.0.10
SERVICE_PROTOCOL=http
SERVICE_LISTEN_ADDRESS=0.0.0.0
SERVICE_TIMEOUT=60
REGION_NAME=$region
KEYSTONE_SERVICE_URI=http://10.0.0.10/identity
SERVICE_PASSWORD=devstack-service-secret
SERVICE_PROJECT_NAME=service
SERVICE_DOMAIN_NAME=Default
MEMCACHE_SERVERS=localhost:11211
SSL_BUNDLE_FILE=$root/opt/stack/data/ca-bundle.pem
ENABLE_DEBUG_LOG_LEVEL=True
SYSLOG=False
TEMPEST_CONFIG=$root/opt/stack/tempest/etc/tempest.conf
AETOS_DIR=$repo
AETOS_CONF_DIR=$root/etc/aetos
AETOS_BIN_DIR=$root/usr/local/bin
AETOS_CARGO_TARGET_DIR=$root/cargo-target
EOF

case "$mode" in
    prebuilt)
        export AETOS_PREBUILT_BINARY=$binary
        ;;
    fake-cargo)
        export AETOS_PREBUILT_BINARY=''
        mkdir -p "$root/fakebin"
        cat >"$root/fakebin/cargo" <<EOF
#!/usr/bin/env bash
# Stand-in cargo: records its arguments, working directory and target
# directory, then "builds" the fake aetos-api where cargo would put it.
set -euo pipefail
{ printf 'cargo'; printf '\t%s' "\$@" "cwd=\$PWD" "CARGO_TARGET_DIR=\${CARGO_TARGET_DIR:-}"; printf '\n'; } >>"$root/calls.log"
mkdir -p "\$CARGO_TARGET_DIR/release"
cp "$here/fake-aetos-api" "\$CARGO_TARGET_DIR/release/aetos-api"
EOF
        chmod +x "$root/fakebin/cargo"
        export PATH="$root/fakebin:$PATH"
        ;;
    no-cargo)
        export AETOS_PREBUILT_BINARY='' AETOS_CARGO=''
        export PATH=/usr/sbin:/usr/bin:/sbin:/bin
        if command -v cargo >/dev/null 2>&1; then
            echo "run-phases.sh: cargo is in $(command -v cargo); cannot simulate a machine without it" >&2
            exit 2
        fi
        ;;
esac

# run_script NAME PHASE... - one devstack script: a fresh shell that sources
# the stand-ins, the devstack variables and the settings, then plugin.sh once
# per phase (each phase given as one word list, e.g. "stack install").
run_script() {
    local name=$1
    shift
    printf '#script\t%s\n' "$name" >>"$root/calls.log"
    bash -c '
        set -o errexit -o nounset -o pipefail
        source "$1/stand-ins.sh"
        if [[ -n "${AETOS_HARNESS_OPENSTACK:-}" ]]; then
            source "$1/keystone-live.sh"
        fi
        source "$2/devstackrc"
        source "$3/settings"
        shift 3
        for phase in "$@"; do
            read -r -a words <<<"$phase"
            printf "#phase\t%s\n" "$phase" >>"$AETOS_HARNESS_CALLS"
            source "'"$plugin_dir"'/plugin.sh" "${words[@]}"
        done
    ' run-phases "$here" "$root" "$plugin_dir" "$@"
}

# Every file and symbolic link the plugin left in the root's system dirs.
snapshot_state() {
    (cd "$root" && find etc usr run -mindepth 1 \( -type f -o -type l \) | LC_ALL=C sort) >"$root/state-after-$1"
}

# Keep what stack.sh produced, before unstack and clean remove it.
keep_after_stack() {
    local src dst
    for pair in "etc/aetos/aetos.conf:aetos.conf" \
        "etc/aetos/policy.yaml.sample:policy.yaml.sample" \
        "opt/stack/tempest/etc/tempest.conf:tempest.conf" \
        "etc/apache2/sites-available/aetos.conf:apache-aetos.conf" \
        "run/aetos-api:run-aetos-api"; do
        src=$root/${pair%%:*}
        dst=$root/after-stack/${pair##*:}
        if [[ -f "$src" ]]; then
            cp "$src" "$dst"
        fi
    done
}

show() {
    echo
    echo "===== $1 ====="
    if [[ -f "$2" ]]; then
        cat "$2"
    else
        echo "(absent)"
    fi
}

status=0
run_script stack.sh "stack pre-install" "stack install" "stack post-config" \
    "stack extra" "stack test-config" || status=$?
keep_after_stack
snapshot_state stack.sh
if [[ $status -eq 0 && -n "$keystone_cloud" ]]; then
    "$(dirname "$openstack_cli")/python" - "$discover_cloud" "$region" >"$root/discovered-endpoints" <<'PY' || status=$?
# What python-observabilityclient (openstack metric ... --os-region-name R)
# resolves: a keystoneauth Adapter for service type metric-storage, the
# interface and the region, on the cloud's session.
import sys

import openstack
from keystoneauth1 import adapter

cloud, region = sys.argv[1], sys.argv[2]
session = openstack.connect(cloud=cloud).session
for interface in ("public", "internal", "admin"):
    url = adapter.Adapter(session=session, service_type="metric-storage",
                          interface=interface, region_name=region).get_endpoint()
    print(interface, url)
PY
fi
if [[ $status -eq 0 ]]; then
    run_script unstack.sh "unstack" || status=$?
    snapshot_state unstack.sh
fi
if [[ $status -eq 0 ]]; then
    run_script clean.sh "unstack" "clean" || status=$?
    snapshot_state clean.sh
fi

show "calls (name<TAB>arguments)" "$root/calls.log"
show "aetos.conf after stack.sh" "$root/after-stack/aetos.conf"
show "policy.yaml.sample after stack.sh" "$root/after-stack/policy.yaml.sample"
show "Apache site after stack.sh" "$root/after-stack/apache-aetos.conf"
show "tempest.conf after stack.sh" "$root/after-stack/tempest.conf"
show "process started by stack.sh (devstack@aetos-api)" "$root/after-stack/run-aetos-api"
if [[ -n "$keystone_cloud" ]]; then
    show "endpoints discovered as $discover_cloud in region $region" "$root/discovered-endpoints"
fi
for script in stack.sh unstack.sh clean.sh; do
    show "files after $script" "$root/state-after-$script"
done
echo
if [[ $status -ne 0 ]]; then
    echo "run-phases.sh: a devstack script failed with status $status" >&2
    exit "$status"
fi
echo "run-phases.sh: every phase ran"
