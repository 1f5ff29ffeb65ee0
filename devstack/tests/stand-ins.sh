# shellcheck shell=bash
# Minimal stand-ins for the devstack functions aetos' plugin (and its
# settings) call, for devstack/tests/run-phases.sh. devstack itself cannot
# run here; these reproduce the part of each function's contract the plugin
# relies on, and record every call.
#
# Every stand-in appends one line to $AETOS_HARNESS_CALLS:
#     name<TAB>arg1<TAB>arg2...
# Files live under $AETOS_HARNESS_ROOT. iniset/iniget/inidelete really edit
# INI files the way devstack's do (a new section is appended at the end of
# the file, a new option goes right below its section header, an existing
# one is replaced in place); configure_keystone_authtoken_middleware writes
# the keys devstack's writes; enable_service/is_service_enabled/trueorfalse
# follow devstack's semantics (including the is_<service>_enabled hook).
# Keystone and process stand-ins only record (and keep a state file for the
# process), since they have no other observable effect here.

# Append one call record.
function _harness_record {
    local IFS=$'\t'
    printf '%s\n' "$*" >>"$AETOS_HARNESS_CALLS"
}

# --- control -----------------------------------------------------------

function echo_summary {
    _harness_record echo_summary "$@"
    echo "[summary] $*"
}

# die $LINENO "message..." - print and exit non-zero (as devstack's die).
function die {
    _harness_record die "$@"
    local line=$1
    shift
    echo "[ERROR] plugin.sh:$line $*" >&2
    exit 1
}

# warn $LINENO "message..." - print and carry on.
function warn {
    _harness_record warn "$@"
    local line=$1
    shift
    echo "[WARNING] plugin.sh:$line $*" >&2
}

# sudo command... - everything runs as the invoking user here, inside the
# temporary root; the call is recorded so the test sees what needed root.
function sudo {
    _harness_record sudo "$@"
    "$@"
}

# trueorfalse default VARNAME - devstack's normalisation of booleans.
function trueorfalse {
    _harness_record trueorfalse "$@"
    local default=$1
    local testval=${!2:-}
    case "$testval" in
        1 | [yY]es | YES | [tT]rue | TRUE) echo True ;;
        0 | [nN]o | NO | [fF]alse | FALSE) echo False ;;
        *) echo "$default" ;;
    esac
}

# --- services ----------------------------------------------------------

# enable_service name... - add to ENABLED_SERVICES unless disabled.
function enable_service {
    _harness_record enable_service "$@"
    local service
    for service in "$@"; do
        if [[ ,${DISABLED_SERVICES:-}, =~ ,${service}, ]]; then
            continue
        fi
        if ! is_service_enabled "$service"; then
            ENABLED_SERVICES+=",$service"
        fi
    done
    ENABLED_SERVICES=${ENABLED_SERVICES#,}
}

# is_service_enabled name... - true if any is in ENABLED_SERVICES or its
# is_<name>_enabled function (when defined) says so.
function is_service_enabled {
    _harness_record is_service_enabled "$@"
    local enabled=1 service
    for service in "$@"; do
        [[ ,${ENABLED_SERVICES}, =~ ,${service}, ]] && enabled=0
        if type "is_${service}_enabled" >/dev/null 2>&1; then
            "is_${service}_enabled" && enabled=0
        fi
    done
    return $enabled
}

# --- INI files ---------------------------------------------------------

# iniset file section option value
function iniset {
    _harness_record iniset "$@"
    local file=$1 section=$2 option=$3 value=${4:-}
    [[ -z "$section" || -z "$option" ]] && return 0
    [[ -f "$file" ]] || : >"$file"
    local tmp
    tmp=$(mktemp "$file.XXXXXX")
    INI_SECTION=$section INI_OPTION=$option INI_VALUE=$value awk '
        BEGIN { section = ENVIRON["INI_SECTION"]; option = ENVIRON["INI_OPTION"]; value = ENVIRON["INI_VALUE"] }
        function is_header(l) { return l ~ /^\[.*\]/ }
        function is_option(l,  k) {
            if (l !~ /=/) return 0
            k = l; sub(/[ \t]*=.*/, "", k)
            return k == option
        }
        { lines[NR] = $0 }
        END {
            target = 0; replaced = 0; cur = ""
            for (i = 1; i <= NR; i++) {
                if (is_header(lines[i])) { cur = lines[i]; if (cur == "[" section "]" && !target) target = i; continue }
                if (cur == "[" section "]" && is_option(lines[i]) && !replaced) {
                    match(lines[i], /^[^=]*=[ \t]*/)
                    lines[i] = substr(lines[i], 1, RLENGTH) value
                    replaced = 1
                }
            }
            for (i = 1; i <= NR; i++) {
                print lines[i]
                if (i == target && !replaced) print option " = " value
            }
            if (!target) { print ""; print "[" section "]"; print option " = " value }
        }' "$file" >"$tmp"
    mv "$tmp" "$file"
}

# iniget file section option - print the value (empty if unset).
function iniget {
    _harness_record iniget "$@"
    local file=$1 section=$2 option=$3
    [[ -f "$file" ]] || return 0
    INI_SECTION=$section INI_OPTION=$option awk '
        BEGIN { section = ENVIRON["INI_SECTION"]; option = ENVIRON["INI_OPTION"] }
        /^\[.*\]/ { cur = $0; next }
        cur == "[" section "]" {
            k = $0; sub(/[ \t]*=.*/, "", k)
            if ($0 ~ /=/ && k == option) { v = $0; sub(/^[^=]*=[ \t]*/, "", v); print v; exit }
        }' "$file"
}

# inidelete file section option - remove the option from the section.
function inidelete {
    _harness_record inidelete "$@"
    local file=$1 section=$2 option=$3
    [[ -f "$file" ]] || return 0
    local tmp
    tmp=$(mktemp "$file.XXXXXX")
    INI_SECTION=$section INI_OPTION=$option awk '
        BEGIN { section = ENVIRON["INI_SECTION"]; option = ENVIRON["INI_OPTION"] }
        /^\[.*\]/ { cur = $0; print; next }
        {
            k = $0; sub(/[ \t]*=.*/, "", k)
            if (cur == "[" section "]" && $0 ~ /=/ && k == option) next
            print
        }' "$file" >"$tmp"
    mv "$tmp" "$file"
}

# --- Keystone ----------------------------------------------------------

# configure_keystone_authtoken_middleware conf_file admin_user [section] [service_type]
# writes what devstack's lib/keystone writes for a service's auth_token.
function configure_keystone_authtoken_middleware {
    _harness_record configure_keystone_authtoken_middleware "$@"
    local conf_file=$1 admin_user=$2 section=${3:-keystone_authtoken} service_type=${4:-}
    iniset "$conf_file" "$section" auth_type password
    iniset "$conf_file" "$section" interface public
    iniset "$conf_file" "$section" auth_url "$KEYSTONE_SERVICE_URI"
    iniset "$conf_file" "$section" username "$admin_user"
    iniset "$conf_file" "$section" password "$SERVICE_PASSWORD"
    iniset "$conf_file" "$section" user_domain_name "$SERVICE_DOMAIN_NAME"
    iniset "$conf_file" "$section" project_name "$SERVICE_PROJECT_NAME"
    iniset "$conf_file" "$section" project_domain_name "$SERVICE_DOMAIN_NAME"
    iniset "$conf_file" "$section" cafile "$SSL_BUNDLE_FILE"
    iniset "$conf_file" "$section" memcached_servers "$MEMCACHE_SERVERS"
    if [[ -n "$service_type" ]]; then
        iniset "$conf_file" "$section" service_type "$service_type"
    fi
}

# create_service_user name [role] - user in the service project.
function create_service_user {
    _harness_record create_service_user "$@"
    echo "id-user-$1"
}

# get_or_create_service name type description
function get_or_create_service {
    _harness_record get_or_create_service "$@"
    echo "id-service-$2"
}

# get_or_create_endpoint service region public [admin] [internal]
function get_or_create_endpoint {
    _harness_record get_or_create_endpoint "$@"
    echo "id-endpoint-$1"
}

# --- processes ---------------------------------------------------------

# run_process name command - devstack starts devstack@name under systemd;
# here the command line is kept in $AETOS_HARNESS_ROOT/run/name.
function run_process {
    _harness_record run_process "$@"
    if is_service_enabled "$1"; then
        mkdir -p "$AETOS_HARNESS_ROOT/run"
        printf '%s\n' "$2" >"$AETOS_HARNESS_ROOT/run/$1"
    fi
}

# stop_process name
function stop_process {
    _harness_record stop_process "$@"
    rm -f "$AETOS_HARNESS_ROOT/run/$1"
}

# wait_for_service timeout url - devstack polls the URL with curl; nothing
# listens here, so the call is only recorded.
function wait_for_service {
    _harness_record wait_for_service "$@"
    return 0
}

# --- Apache ------------------------------------------------------------

function apache_site_config_for {
    _harness_record apache_site_config_for "$@"
    echo "$AETOS_HARNESS_ROOT/etc/apache2/sites-available/$1.conf"
}

function enable_apache_mod {
    _harness_record enable_apache_mod "$@"
}

function enable_apache_site {
    _harness_record enable_apache_site "$@"
    ln -sf "../sites-available/$1.conf" "$AETOS_HARNESS_ROOT/etc/apache2/sites-enabled/$1.conf"
}

function disable_apache_site {
    _harness_record disable_apache_site "$@"
    rm -f "$AETOS_HARNESS_ROOT/etc/apache2/sites-enabled/$1.conf"
}

function restart_apache_server {
    _harness_record restart_apache_server "$@"
}
