#!/bin/bash
# THE FEW PIECES OF DEVSTACK THAT CANNOT RUN ON A TEST MACHINE.
#
# test_devstack.py sources DevStack's real function library (functions,
# functions-common, inc/*, lib/database, lib/databases/mysql and
# lib/rpc_backend, vendored under data/devstack/), then this file, then
# runs the plugin's phases with DevStack's own run_phase, as an
# unprivileged STACK_USER with passwordless sudo. Everything the plugin
# calls is DevStack's code, except what this file replaces:
#
# - echo_summary belongs to stack.sh, not to the library: it prints.
# - install_package would run apt-get/dnf: it installs nothing and fails
#   when the package's program is missing.
# - pip_install would install into the venv, which belongs to the test
#   runner, not to STACK_USER: it fails unless the project is already
#   installed (editable) from that directory, as tox does.
# - systemctl: there is no systemd here, so SYSTEMCTL (stackrc sets it to
#   "sudo systemctl") is _standin_systemctl. DevStack's real run_process
#   writes the devstack@ unit file as usual (into SYSTEMD_DIR); the
#   stand-in starts its ExecStart as its User= with its Environment=, in a
#   session of its own, output to $LOGDIR/<unit>.log; "stop" sends
#   SIGTERM and waits, as KillMode=process does.

STANDIN_STOP_TIMEOUT=${STANDIN_STOP_TIMEOUT:-60}
STANDIN_STATE_DIR=${STANDIN_STATE_DIR:-$SYSTEMD_DIR/state}
SYSTEMCTL=_standin_systemctl

function echo_summary {
    echo "echo_summary: $*"
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

# pip_install [-e] project_dir: DevStack passes the flags and the directory
function pip_install {
    local project_dir=${!#}
    local python=$DEVSTACK_VENV/bin/python
    local name
    name=$(awk '/^name.*=/ {print $3}' $project_dir/setup.cfg)
    if ! $python -c 'import importlib, os, sys
m = importlib.import_module(sys.argv[1])
top = os.path.realpath(sys.argv[2]) + os.sep
sys.exit(not os.path.realpath(m.__file__).startswith(top))' \
            $name $project_dir; then
        die $LINENO "pip_install: $name is not installed from" \
            "$project_dir in $DEVSTACK_VENV and the stand-in installs nothing"
    fi
    echo "pip_install: $name is already installed from $project_dir"
}

# _standin_pid unit: the pid of a started unit, if any
function _standin_pid {
    cat $STANDIN_STATE_DIR/$1.pid 2>/dev/null
}

# _standin_alive pid: running, and not a zombie waiting to be reaped
function _standin_alive {
    local state
    [[ -n "$1" ]] || return 1
    state=$(ps -o stat= -p $1 2>/dev/null) || return 1
    [[ -n "$state" && "$state" != Z* ]]
}

# _standin_start unit: run the unit file's ExecStart as its User=
function _standin_start {
    local unit=$1
    local unitfile=$SYSTEMD_DIR/$unit
    local user
    local command
    local environment
    local log=$LOGDIR/$unit.log
    if _standin_alive "$(_standin_pid $unit)"; then
        return 0
    fi
    user=$(iniget $unitfile Service User)
    command=$(iniget $unitfile Service ExecStart)
    environment=$(iniget $unitfile Service Environment)
    # Environment="PATH=..." as DevStack writes it: unquote like systemd.
    eval "environment=($environment)"
    sudo mkdir -p $STANDIN_STATE_DIR $LOGDIR
    # setsid and setpriv exec, so $! is the service itself.
    sudo bash -c 'log=$1 pidfile=$2 user=$3; shift 3
        setsid setpriv --reuid="$user" --regid="$(id -g "$user")" \
            --init-groups env -i HOME="$(getent passwd "$user" | cut -d: -f6)" \
            "$@" >>"$log" 2>&1 </dev/null &
        echo $! >"$pidfile"' _ $log $STANDIN_STATE_DIR/$unit.pid $user \
        "${environment[@]}" $command
    echo "systemctl start $unit: pid $(_standin_pid $unit) as $user"
}

# _standin_stop unit
function _standin_stop {
    local unit=$1
    local pid
    local waited=0
    pid=$(_standin_pid $unit)
    if _standin_alive "$pid"; then
        sudo kill -TERM $pid
        while _standin_alive $pid; do
            if [[ $waited -ge $STANDIN_STOP_TIMEOUT ]]; then
                echo "systemctl stop $unit: ignored SIGTERM for" \
                    "$STANDIN_STOP_TIMEOUT s, sending SIGKILL"
                sudo kill -KILL $pid
                break
            fi
            sleep 1
            waited=$((waited + 1))
        done
    fi
    sudo rm -f $STANDIN_STATE_DIR/$unit.pid
    echo "systemctl stop $unit: stopped"
}

# _standin_systemctl action [--quiet] [unit]: what DevStack asks of systemctl
function _standin_systemctl {
    local action=$1
    shift
    if [[ "$1" == "--quiet" ]]; then
        shift
    fi
    local unit=$1
    case $action in
        daemon-reload)
            ;;
        enable)
            sudo mkdir -p $STANDIN_STATE_DIR
            sudo touch $STANDIN_STATE_DIR/$unit.enabled
            ;;
        disable)
            sudo rm -f $STANDIN_STATE_DIR/$unit.enabled
            ;;
        is-enabled)
            [[ -f $STANDIN_STATE_DIR/$unit.enabled ]]
            ;;
        is-active)
            _standin_alive "$(_standin_pid $unit)"
            ;;
        start)
            _standin_start $unit
            ;;
        stop)
            _standin_stop $unit
            ;;
        *)
            die $LINENO "systemctl $action: the stand-in does not know it"
            ;;
    esac
}
