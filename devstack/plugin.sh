#!/bin/bash
# DevStack plugin for osbackup: installs it, writes its configuration from
# DevStack's RabbitMQ and database settings, creates the catalogue, runs
# devstack@osbackup-conductor and devstack@osbackup-agent and proves the
# deployment with one real backup.
#
# local.conf:
#   enable_plugin osbackup https://opendev.org/x/osbackup

# Save trace setting
_XTRACE_OSBACKUP=$(set +o | grep xtrace)
set +o xtrace

# install_osbackup - install the code and the mysqldump client
function install_osbackup {
    # DevStack cloned this repository to find the plugin, so there is
    # nothing to git_clone.
    setup_develop $OSBACKUP_DIR

    # The mysql driver runs mysqldump and mysql. A node with DevStack's
    # database server has them already; installing another client there
    # could conflict with the server's packages.
    if ! command -v mysqldump >/dev/null 2>&1; then
        local package=$OSBACKUP_MYSQL_CLIENT_PACKAGE
        if [[ -z "$package" ]]; then
            if is_fedora; then
                package=mariadb
            else
                package=mariadb-client
            fi
        fi
        install_package $package
    fi
}

# _osbackup_write_rpc_key - the RPC signing key, readable by its services
function _osbackup_write_rpc_key {
    # Every RPC message is signed; all nodes of a deployment need the same
    # key, so multinode jobs set OSBACKUP_RPC_KEY on every node. The
    # conductor and osbackup-manage run as $STACK_USER and the agent as
    # root: the key belongs to $STACK_USER, and it is 0600 before it holds
    # anything.
    local key_file=$OSBACKUP_RPC_KEY_FILE
    if [[ -n "$OSBACKUP_RPC_KEY" ]] || ! sudo test -s $key_file; then
        sudo install -o $STACK_USER -m 0600 /dev/null $key_file.new
        if [[ -n "$OSBACKUP_RPC_KEY" ]]; then
            echo "$OSBACKUP_RPC_KEY" | sudo tee $key_file.new >/dev/null
        else
            openssl rand -hex 32 | sudo tee $key_file.new >/dev/null
        fi
        sudo mv -f $key_file.new $key_file
    fi
    # A key kept from an earlier stack may still be root's.
    sudo chown $STACK_USER $key_file
    sudo chmod 0600 $key_file
}

# configure_osbackup - write osbackup.conf, create the catalogue
function configure_osbackup {
    sudo install -d -o $STACK_USER -m 0755 $OSBACKUP_CONF_DIR
    sudo install -d -o $STACK_USER -m 0700 $OSBACKUP_STATE_DIR \
        $OSBACKUP_BACKUP_DIR

    # Start from the generated sample so every option is documented in
    # place.
    rm -f $OSBACKUP_CONF
    $OSBACKUP_BIN_DIR/oslo-config-generator \
        --config-file $OSBACKUP_DIR/etc/osbackup/osbackup-config-generator.conf \
        --output-file $OSBACKUP_CONF
    # It will hold the RabbitMQ and database passwords.
    chmod 0600 $OSBACKUP_CONF

    # A vhost of its own, as the README asks of production. The node
    # running RabbitMQ creates it; other nodes only point at it.
    if is_service_enabled rabbit; then
        rpc_backend_add_vhost $OSBACKUP_RPC_VHOST
    fi
    iniset_rpc_backend osbackup $OSBACKUP_CONF DEFAULT $OSBACKUP_RPC_VHOST

    _osbackup_write_rpc_key
    iniset $OSBACKUP_CONF DEFAULT rpc_signing_key_file $OSBACKUP_RPC_KEY_FILE

    iniset $OSBACKUP_CONF DEFAULT debug $ENABLE_DEBUG_LOG_LEVEL
    # Logs on stderr: the journal gets them from the devstack@ units as
    # before, and osbackup-manage keeps stdout for its tables and JSON.
    iniset $OSBACKUP_CONF DEFAULT use_stderr True
    iniset $OSBACKUP_CONF DEFAULT state_path $OSBACKUP_STATE_DIR
    iniset $OSBACKUP_CONF DEFAULT service_manager $OSBACKUP_SERVICE_MANAGER
    if [[ -n "$OSBACKUP_HOST" ]]; then
        iniset $OSBACKUP_CONF DEFAULT host $OSBACKUP_HOST
    fi
    iniset $OSBACKUP_CONF storage local_path $OSBACKUP_BACKUP_DIR

    iniset $OSBACKUP_CONF agent root_path $OSBACKUP_ROOT_PATH
    if [[ -n "$OSBACKUP_AGENT_DRIVERS" ]]; then
        iniset $OSBACKUP_CONF agent drivers $OSBACKUP_AGENT_DRIVERS
    fi

    # The mysql driver dumps DevStack's database server, with its
    # administrator account, on the node that runs it. Elsewhere it keeps
    # its defaults and finds no local server, so it skips its tasks
    # instead of dumping the controller's server once per node.
    # DATABASE_HOST is bracketed on IPv6 DevStacks ([::1]) for SQLAlchemy
    # URLs; the mysql clients want the bare address, which DevStack keeps
    # in MYSQL_HOST, as its own recreate_database does.
    if is_service_enabled mysql; then
        iniset $OSBACKUP_CONF mysql host \
            $(ipv6_unquote ${MYSQL_HOST:-$DATABASE_HOST})
        iniset $OSBACKUP_CONF mysql user $DATABASE_USER
        iniset $OSBACKUP_CONF mysql password $DATABASE_PASSWORD
    fi
    if [[ -n "$OSBACKUP_MYSQL_DATABASES" ]]; then
        iniset $OSBACKUP_CONF mysql databases $OSBACKUP_MYSQL_DATABASES
    fi

    iniset $OSBACKUP_CONF nova units $OSBACKUP_NOVA_UNITS
    iniset $OSBACKUP_CONF glance units $OSBACKUP_GLANCE_UNITS
    iniset $OSBACKUP_CONF keystone units $OSBACKUP_KEYSTONE_UNITS
    iniset $OSBACKUP_CONF cinder units $OSBACKUP_CINDER_UNITS
    iniset $OSBACKUP_CONF swift units $OSBACKUP_SWIFT_UNITS

    # Only the conductor and osbackup-manage use the catalogue; a node
    # running just the agent must not recreate the controller's database.
    if is_service_enabled osbackup-conductor; then
        iniset $OSBACKUP_CONF database connection \
            $(database_connection_url $OSBACKUP_DB_NAME)
        recreate_database $OSBACKUP_DB_NAME
        $OSBACKUP_BIN_DIR/osbackup-manage --config-file $OSBACKUP_CONF \
            db sync || die $LINENO "osbackup-manage db sync failed"
    fi
}

# start_osbackup - run the services as devstack@ units
function start_osbackup {
    run_process osbackup-conductor \
        "$OSBACKUP_BIN_DIR/osbackup-conductor --config-file $OSBACKUP_CONF"
    run_process osbackup-agent \
        "$OSBACKUP_BIN_DIR/osbackup-agent --config-file $OSBACKUP_CONF" \
        "" "$OSBACKUP_AGENT_USER"
}

# _osbackup_unit_running SERVICE - true while devstack@SERVICE runs
function _osbackup_unit_running {
    $SYSTEMCTL is-active --quiet devstack@$1.service
}

# _osbackup_wait_for_services HOST - wait until both services run, a
# conductor answers and it has recorded the agent on HOST as up
# ("osbackup-manage agent wait"); die, with the last error, when either
# service stops or after OSBACKUP_AGENT_TIMEOUT seconds
function _osbackup_wait_for_services {
    local host=$1
    local deadline
    local errors
    local error
    local last=""
    local service

    deadline=$((SECONDS + OSBACKUP_AGENT_TIMEOUT))
    errors=$(mktemp)
    echo "Waiting up to $OSBACKUP_AGENT_TIMEOUT seconds for" \
        "osbackup-conductor to answer and record osbackup-agent on $host" \
        "as up"
    while true; do
        for service in osbackup-conductor osbackup-agent; do
            if ! _osbackup_unit_running $service; then
                rm -f $errors
                die $LINENO "$service is not running; see its log" \
                    "(journalctl -u devstack@$service)"
            fi
        done
        # A short wait at a time, so a service that dies is seen; its
        # own errors (catalogue, configuration) are shown, each once, not
        # hidden: they are why the wait would fail.
        if $OSBACKUP_BIN_DIR/osbackup-manage --config-file $OSBACKUP_CONF \
                agent wait $host --timeout 5 >/dev/null 2>$errors; then
            break
        fi
        error=$(grep -m1 '^ERROR' $errors || tail -n1 $errors)
        if [[ "$error" != "$last" ]]; then
            last=$error
            echo "osbackup-manage agent wait failed: $last" >&2
        fi
        if [[ $SECONDS -ge $deadline ]]; then
            rm -f $errors
            die $LINENO "osbackup-agent on $host is not up after" \
                "$OSBACKUP_AGENT_TIMEOUT seconds: $last"
        fi
        sleep 1
    done
    rm -f $errors
}

# smoke_osbackup - back up this node; any failure fails the stack
function smoke_osbackup {
    local host

    host=${OSBACKUP_HOST:-$(hostname)}
    _osbackup_wait_for_services $host

    $OSBACKUP_BIN_DIR/osbackup-manage --config-file $OSBACKUP_CONF \
        backup create --host $host --wait \
        || die $LINENO "osbackup smoke backup of $host failed"
}

# stop_osbackup - stop the services
function stop_osbackup {
    stop_process osbackup-agent
    stop_process osbackup-conductor
}

# cleanup_osbackup - remove state, archives and the configuration (it
# holds the RabbitMQ and database passwords and the RPC key)
function cleanup_osbackup {
    sudo rm -rf $OSBACKUP_STATE_DIR $OSBACKUP_BACKUP_DIR
    sudo rm -f $OSBACKUP_CONF $OSBACKUP_RPC_KEY_FILE
    # Only when nothing else is left in it: it may be shared.
    if [[ -d $OSBACKUP_CONF_DIR ]]; then
        sudo rmdir --ignore-fail-on-non-empty $OSBACKUP_CONF_DIR
    fi
}

if is_service_enabled osbackup-conductor osbackup-agent; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing osbackup"
        install_osbackup

    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring osbackup"
        configure_osbackup

    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        echo_summary "Starting osbackup"
        start_osbackup
        if [[ "$OSBACKUP_SMOKE_BACKUP" == "True" ]] && \
                is_service_enabled osbackup-conductor && \
                is_service_enabled osbackup-agent; then
            echo_summary "Backing up this node with osbackup"
            smoke_osbackup
        fi
    fi

    if [[ "$1" == "unstack" ]]; then
        stop_osbackup
    fi

    if [[ "$1" == "clean" ]]; then
        cleanup_osbackup
    fi
fi

# Restore xtrace
$_XTRACE_OSBACKUP
