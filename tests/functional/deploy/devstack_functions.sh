# shellcheck shell=bash
# Stand-ins for the devstack functions devstack/plugin.sh relies on, for
# tests/functional/deploy/test_devstack_plugin.py. INI edits go through
# devstack-tools (dsconf, from PyPI, the code devstack's own merge uses);
# the functions with side effects outside the config (setup_develop,
# install_package, run_process, stop_process) are recorded, tab separated,
# in $MMV_TEST_RECORD.

: "${MMV_TEST_RECORD:?}" "${MMV_TEST_BIN:?}"

function _record {
    local IFS=$'\t'
    printf '%s\n' "$*" >> "$MMV_TEST_RECORD"
}

function _ini_py {
    "$MMV_TEST_BIN/python" - "$@" <<'PY'
import re
import sys

from devstack import dsconf

action, path, section, option = sys.argv[1:5]
if action == 'add':
    dsconf.IniFile(path).add(section, option, sys.argv[5])
    sys.exit(0)
current, values = None, []
with open(path) as handle:
    for line in handle:
        match = re.match(r'\[([^\[\]]+)\]', line)
        if match:
            current = match.group(1)
            continue
        match = re.match(r'%s[ \t]*=[ \t]*(.*)$' % re.escape(option), line)
        if current == section and match:
            values.append(match.group(1).rstrip('\n'))
print(' '.join(values) if action == 'getm' else (values[0] if values
                                                  else ''))
PY
}

function get_python_exec_prefix { echo "$MMV_TEST_BIN"; }
function echo_summary { echo "$@"; }
function warn { _record warn "$2"; echo "WARNING: $2" >&2; }
function die { echo "ERROR: $2" >&2; exit 1; }
function sudo { "$@"; }

function trueorfalse {
    local default=$1 value=${!2:-$1}
    case "$value" in
        1 | [Yy]es | [Tt]rue | [Oo]n) echo True ;;
        0 | [Nn]o | [Ff]alse | [Oo]ff) echo False ;;
        *) echo "$default" ;;
    esac
}

function is_service_enabled {
    local service
    for service in "$@"; do
        [[ ",${ENABLED_SERVICES}," == *",$service,"* ]] && return 0
    done
    return 1
}

function enable_service {
    local service
    for service in "$@"; do
        is_service_enabled "$service" || \
            ENABLED_SERVICES="${ENABLED_SERVICES:+$ENABLED_SERVICES,}$service"
    done
}

function setup_develop { _record setup_develop "$@"; }
function install_package { _record install_package "$@"; }
function run_process { _record run_process "$1" "$2" "${3:-}" "${4:-}"; }
function stop_process { _record stop_process "$1"; }

function iniset { "$MMV_TEST_BIN/dsconf" iniset "$1" "$2" "$3" "$4"; }
function inidelete { "$MMV_TEST_BIN/dsconf" inirm "$1" "$2" "$3"; }
function iniadd_literal { _ini_py add "$1" "$2" "$3" "$4"; }
function iniget { _ini_py get "$1" "$2" "$3"; }
function iniget_multiline { _ini_py getm "$1" "$2" "$3"; }

function iniset_multiline {
    local file=$1 section=$2 option=$3 i
    shift 3
    local -a values=("$@")
    inidelete "$file" "$section" "$option"
    for ((i = ${#values[@]} - 1; i >= 0; i--)); do
        iniadd_literal "$file" "$section" "$option" "${values[i]}"
    done
}

function restart_service { _record restart_service "$@"; }
