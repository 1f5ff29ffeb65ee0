# shellcheck shell=bash
# Live versions of the Keystone stand-ins, for run-phases.sh --keystone:
# the same calls devstack's lib/keystone and functions-common make with the
# openstack CLI, against a real Keystone ($AETOS_HARNESS_OPENSTACK, as the
# cloud $OS_CLOUD of $OS_CLIENT_CONFIG_FILE, an admin). Sourced after
# stand-ins.sh; each function still records its call.

function _harness_openstack {
    "$AETOS_HARNESS_OPENSTACK" "$@"
}

# get_or_create_user name password domain - devstack's: create or show.
function _harness_get_or_create_user {
    _harness_openstack user create "$1" --password "$2" --domain "$3" --or-show -f value -c id
}

# get_or_add_user_project_role role user project - devstack's: add the role
# unless the user already has it in the project.
function _harness_get_or_add_user_project_role {
    local assigned
    assigned=$(_harness_openstack role assignment list --role "$1" --user "$2" --project "$3" -f value -c Role)
    if [[ -z "$assigned" ]]; then
        _harness_openstack role add "$1" --user "$2" --project "$3"
    fi
}

function create_service_user {
    _harness_record create_service_user "$@"
    local role=${2:-service} user
    user=$(_harness_get_or_create_user "$1" "$SERVICE_PASSWORD" default)
    _harness_get_or_add_user_project_role "$role" "$user" "$SERVICE_PROJECT_NAME"
    echo "$user"
}

function get_or_create_service {
    _harness_record get_or_create_service "$@"
    _harness_openstack service show "$2" -f value -c id 2>/dev/null ||
        _harness_openstack service create "$2" --name "$1" --description="$3" -f value -c id
}

# _harness_endpoint service interface url region
function _harness_endpoint {
    local id
    id=$(_harness_openstack endpoint list --service "$1" --interface "$2" --region "$4" -c ID -f value)
    if [[ -z "$id" ]]; then
        id=$(_harness_openstack endpoint create "$1" "$2" "$3" --region "$4" -f value -c id)
    fi
    echo "$id"
}

function get_or_create_endpoint {
    _harness_record get_or_create_endpoint "$@"
    local public_id
    public_id=$(_harness_endpoint "$1" public "$3" "$2")
    if [[ -n "${4:-}" ]]; then
        _harness_endpoint "$1" admin "$4" "$2" >/dev/null
    fi
    if [[ -n "${5:-}" ]]; then
        _harness_endpoint "$1" internal "$5" "$2" >/dev/null
    fi
    echo "$public_id"
}
