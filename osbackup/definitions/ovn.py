"""OVN: the northbound and southbound databases of ovsdb-server.

With neutron's OVN driver the network's truth is in the northbound
database (neutron's own database holds the rest): both are captured with
``ovsdb-client backup`` while ovsdb-server serves them, and restored with
``ovsdb-client restore``. ``neutron-ovn-db-sync-util`` repairs the NB
database when it and neutron's database disagree after a restore.
"""

from oslo_config import cfg

from osbackup.definitions import base

NAME = 'ovn'
#: The repair a restore plan names when NB and neutron's DB disagree.
SYNC_COMMAND = ('neutron-ovn-db-sync-util --config-file '
                '/etc/neutron/neutron.conf --config-file '
                '/etc/neutron/plugins/ml2/ml2_conf.ini '
                '--ovn-neutron_sync_mode repair')

DEFINITION = base.ServiceDefinition(
    name=NAME, title='OVN northbound/southbound database driver',
    package='ovn-central',
    units=('ovn-central', 'ovn-northd', 'ovn-ovsdb-server-nb',
           'ovn-ovsdb-server-sb'),
    # The databases themselves: a compute node running ovn-controller has
    # /var/lib/ovn and /etc/ovn too, but no NB or SB database.
    markers=('/var/lib/ovn/ovnnb_db.db', '/var/lib/ovn/ovnsb_db.db'),
    fileset=False, after=(),
    extra_opts=(
        cfg.StrOpt('nb_connection',
                   default='unix:/var/run/ovn/ovnnb_db.sock',
                   help='The ovsdb-server connection of the OVN northbound '
                        'database (an ovsdb-client "server" argument, e.g. '
                        'unix:/var/run/ovn/ovnnb_db.sock or '
                        'tcp:192.0.2.10:6641). Empty: not backed up.'),
        cfg.StrOpt('sb_connection',
                   default='unix:/var/run/ovn/ovnsb_db.sock',
                   help='The ovsdb-server connection of the OVN southbound '
                        'database (e.g. unix:/var/run/ovn/ovnsb_db.sock). '
                        'Empty: not backed up.'),
        cfg.StrOpt('nb_db_file', default='/var/lib/ovn/ovnnb_db.db',
                   help='The northbound database file (under [agent] '
                        'root_path), copied when ovsdb-server is not '
                        'running and rebuilt with ovsdb-tool when a '
                        'restore finds the server stopped.'),
        cfg.StrOpt('sb_db_file', default='/var/lib/ovn/ovnsb_db.db',
                   help='The southbound database file (see nb_db_file).'),
        cfg.StrOpt('ovsdb_client', default='ovsdb-client',
                   help='The ovsdb-client executable (Open vSwitch >= 2.15 '
                        'for "ovsdb-client restore").'),
        cfg.StrOpt('ovsdb_tool', default='ovsdb-tool',
                   help='The ovsdb-tool executable.'),
        cfg.IntOpt('command_timeout', default=300, min=1,
                   help='Seconds one ovsdb-client or ovsdb-tool command may '
                        'take.'),
    ))
