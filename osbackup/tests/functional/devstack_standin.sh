#!/bin/bash
# A SMALL STAND-IN FOR DEVSTACK'S FUNCTIONS, NOT DEVSTACK.
#
# test_devstack.py sources this file, then devstack/settings and
# devstack/plugin.sh, to run the plugin's phases on a machine without
# DevStack. It implements only the functions of DevStack's functions-common,
# inc/ini-config, inc/python, lib/database and lib/rpc_backend that the
# plugin calls, with the same arguments and the same effect where that
# matters to the plugin:
#
# - iniset, rpc_backend_add_vhost, iniset_rpc_backend, recreate_database,
#   database_connection_url, die, trueorfalse, is_service_enabled and
#   enable_service behave like DevStack's, against the real config file,
#   RabbitMQ (rabbitmqctl) and MariaDB (mysql client);
# - run_process starts the command in the background with nohup (a pid file
#   in $SERVICE_DIR, output in $LOGDIR/<service>.log) instead of writing
#   and starting a devstack@<service> systemd unit, and stop_process sends
#   SIGTERM to that pid, as systemctl stop would;
# - setup_develop only installs the project when the venv does not already
#   have it installed from that directory; install_package installs nothing
#   and fails when the package's program is missing;
# - sudo runs the command as the invoking user, and run_process ignores its
#   user argument: every path the test uses is its own temporary directory.
#
# Inputs, as DevStack's stackrc/localrc would set them: DEST, DATA_DIR,
# SERVICE_DIR, LOGDIR, STACK_USER, DEVSTACK_VENV, ENABLED_SERVICES,
# DATABASE_HOST/USER/PASSWORD, RABBIT_HOST/USERID/PASSWORD,
# ENABLE_DEBUG_LOG_LEVEL, SERVICE_TIMEOUT.

DISABLED_SERVICES=${DISABLED_SERVICES:-}
MYSQL_HOST=${MYSQL_HOST:-$DATABASE_HOST}
STANDIN_STOP_TIMEOUT=${STANDIN_STOP_TIMEOUT:-60}
STANDIN_PYTHON=${STANDIN_PYTHON:-$DEVSTACK_VENV/bin/python}

# functions-common ------------------------------------------------------

function echo_summary {
    echo "echo_summary: $*"
}

# die $LINENO "message"
function die {
    local exitcode=$?
    local line=$1
    shift
    if [[ $exitcode == 0 ]]; then
        exitcode=1
    fi
    echo "[ERROR] ${BASH_SOURCE[1]}:$line $*" >&2
    exit $exitcode
}

function warn {
    local line=$1
    shift
    echo "[WARNING] ${BASH_SOURCE[1]}:$line $*" >&2
}

# trueorfalse default varname
function trueorfalse {
    local default=$1
    local testval=${!2:-}
    case "$testval" in
        1|yes|Yes|YES|true|True|TRUE|on|On|ON)
            echo "True"
            ;;
        0|no|No|NO|false|False|FALSE|off|Off|OFF)
            echo "False"
            ;;
        "")
            echo "$default"
            ;;
        *)
            die $LINENO "Unknown value \"$testval\" for $2"
            ;;
    esac
}

function define_plugin {
    :
}

# is_service_enabled service [service ...]: true if any is enabled
function is_service_enabled {
    local service
    for service in "$@"; do
        if [[ ,${ENABLED_SERVICES}, =~ ,${service}, ]]; then
            return 0
        fi
    done
    return 1
}

function enable_service {
    local service
    for service in "$@"; do
        if [[ ,${DISABLED_SERVICES}, =~ ,${service}, ]]; then
            warn $LINENO "Attempt to enable_service $service when it has" \
                "been disabled"
            continue
        fi
        if ! is_service_enabled $service; then
            ENABLED_SERVICES=${ENABLED_SERVICES:+$ENABLED_SERVICES,}$service
        fi
    done
}

function is_fedora {
    [[ -r /etc/redhat-release ]]
}

function sudo {
    "$@"
}

# install_package package [package ...]
function install_package {
    local package
    local program
    for package in "$@"; do
        case $package in
            mariadb-client|mariadb|mysql-client|default-mysql-client)
                program=mysqldump
                ;;
            *)
                die $LINENO "install_package: the stand-in does not know" \
                    "$package"
                ;;
        esac
        if ! command -v $program >/dev/null 2>&1; then
            die $LINENO "install_package $package: $program is missing" \
                "and the stand-in installs nothing"
        fi
        echo "install_package: $package is present ($program found)"
    done
}

# run_process service "command line" [group] [user]
function run_process {
    local service=$1
    local command=$2
    local user=${4:-$STACK_USER}
    if ! is_service_enabled $service; then
        return 0
    fi
    mkdir -p $SERVICE_DIR $LOGDIR
    echo "run_process: $service (DevStack would run it as $user;" \
        "the stand-in runs it as $(id -un))"
    nohup $command >>$LOGDIR/$service.log 2>&1 </dev/null &
    echo $! >$SERVICE_DIR/$service.pid
}

# _standin_alive pid: running, and not a zombie waiting to be reaped
function _standin_alive {
    local state
    state=$(ps -o stat= -p $1 2>/dev/null) || return 1
    [[ -n "$state" && "$state" != Z* ]]
}

# stop_process service
function stop_process {
    local service=$1
    local pidfile=$SERVICE_DIR/$service.pid
    local pid
    local waited=0
    if ! is_service_enabled $service || [[ ! -f $pidfile ]]; then
        return 0
    fi
    pid=$(cat $pidfile)
    if _standin_alive $pid; then
        kill -TERM $pid
        while _standin_alive $pid; do
            if [[ $waited -ge $STANDIN_STOP_TIMEOUT ]]; then
                echo "stop_process: $service ignored SIGTERM for" \
                    "$STANDIN_STOP_TIMEOUT s, sending SIGKILL"
                kill -KILL $pid
                break
            fi
            sleep 1
            waited=$((waited + 1))
        done
    fi
    rm -f $pidfile
    echo "stop_process: $service stopped"
}

# inc/python ------------------------------------------------------------

function get_python_exec_prefix {
    echo "$DEVSTACK_VENV/bin"
}

# setup_develop project_dir
function setup_develop {
    local project_dir=$1
    local name
    name=$($STANDIN_PYTHON -c 'import configparser, sys
c = configparser.ConfigParser()
c.read(sys.argv[1])
print(c["metadata"]["name"])' $project_dir/setup.cfg)
    if $STANDIN_PYTHON -c 'import importlib, os, sys
m = importlib.import_module(sys.argv[1])
top = os.path.realpath(sys.argv[2]) + os.sep
sys.exit(not os.path.realpath(m.__file__).startswith(top))' \
            $name $project_dir 2>/dev/null; then
        echo "setup_develop: $name is already installed from $project_dir"
    else
        $STANDIN_PYTHON -m pip install -e $project_dir
    fi
}

# inc/ini-config --------------------------------------------------------

# iniset [-sudo] config-file section option value
function iniset {
    if [[ "$1" == "-sudo" ]]; then
        shift
    fi
    if [[ -z "$2" || -z "$3" ]]; then
        return 0
    fi
    # Like DevStack: replace the option's active line in the section, else
    # add it right below the section header, else add the section.
    $STANDIN_PYTHON - "$1" "$2" "$3" "$4" <<'PYTHON'
import re
import sys

path, section, option, value = sys.argv[1:]
try:
    with open(path) as f:
        lines = f.read().splitlines()
except FileNotFoundError:
    lines = []
new = '%s = %s' % (option, value)
header = None
for i, line in enumerate(lines):
    if line.strip() == '[%s]' % section:
        header = i
        break
if header is None:
    lines += ['', '[%s]' % section, new]
else:
    end = next((j for j in range(header + 1, len(lines))
                if lines[j].startswith('[')), len(lines))
    pattern = re.compile(r'^%s\s*=' % re.escape(option))
    for j in range(header + 1, end):
        if pattern.match(lines[j]):
            lines[j] = new
            break
    else:
        lines.insert(header + 1, new)
with open(path, 'w') as f:
    f.write('\n'.join(lines) + '\n')
PYTHON
}

# lib/database, lib/databases/mysql -------------------------------------

function _standin_mysql {
    mysql -u$DATABASE_USER ${DATABASE_PASSWORD:+-p$DATABASE_PASSWORD} \
        -h$MYSQL_HOST "$@"
}

# recreate_database name
function recreate_database {
    _standin_mysql -e "DROP DATABASE IF EXISTS $1;"
    _standin_mysql -e "CREATE DATABASE $1 CHARACTER SET utf8;"
}

# database_connection_url name
function database_connection_url {
    local base="mysql+pymysql://$DATABASE_USER:$DATABASE_PASSWORD"
    echo "$base@$DATABASE_HOST/$1?charset=utf8"
}

# lib/rpc_backend -------------------------------------------------------

function rpc_backend_add_vhost {
    local vhost=$1
    if ! rabbitmqctl -q list_vhosts | grep -qx "$vhost"; then
        rabbitmqctl -q add_vhost $vhost
        rabbitmqctl -q set_permissions -p $vhost $RABBIT_USERID \
            ".*" ".*" ".*"
    fi
}

function get_transport_url {
    echo "rabbit://$RABBIT_USERID:$RABBIT_PASSWORD@$RABBIT_HOST:5672/$1"
}

# iniset_rpc_backend package file [section] [vhost]
function iniset_rpc_backend {
    local file=$2
    local section=${3:-DEFAULT}
    local vhost=$4
    if is_service_enabled rabbit || \
            [[ -n "$RABBIT_HOST" && -n "$RABBIT_PASSWORD" ]]; then
        iniset $file $section transport_url $(get_transport_url "$vhost")
    fi
}
