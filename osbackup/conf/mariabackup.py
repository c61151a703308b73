"""[mariabackup] options: the physical MariaDB backup driver.

The server connection (host, port, socket, user, password) is the one of
the [mysql] group: both drivers back up the same server.
"""

from oslo_config import cfg

mariabackup_group = cfg.OptGroup(
    'mariabackup', title='Physical MariaDB backup driver (mariadb-backup)')

mariabackup_opts = [
    cfg.BoolOpt('enabled', default=False,
                help='Take a physical backup (mariadb-backup) of the local '
                     'MariaDB server in every backup of this node. Off by '
                     'default: the logical dumps of the mysql driver stay '
                     'the backup of record and the only way to restore one '
                     'database; the physical copy is the fast recovery of '
                     'a whole server. It uses the [mysql] connection '
                     'options; the account also needs RELOAD, PROCESS, '
                     'LOCK TABLES and BINLOG MONITOR (REPLICATION CLIENT).'),
    cfg.StrOpt('mariabackup_path', default='mariadb-backup',
               help='Path or name of the mariadb-backup (or mariabackup) '
                    'executable. It must be the version of the server.'),
    cfg.StrOpt('mbstream_path', default='mbstream',
               help='Path or name of the mbstream executable that unpacks '
                    'the xbstream stream on restore.'),
    cfg.IntOpt('parallel', default=1, min=1,
               help='Threads mariadb-backup copies data files with '
                    '(--parallel), on backup and on restore.'),
    cfg.StrOpt('datadir',
               help='Data directory of the server. Unset: the server is '
                    'asked (@@datadir). Restores replace this directory '
                    'and keep the old one as <datadir>.orig.'),
    cfg.StrOpt('galera_info', default='auto',
               choices=[('auto', 'Add --galera-info when the server '
                                 'reports wsrep_on=ON.'),
                        ('on', 'Always add --galera-info.'),
                        ('off', 'Never add --galera-info.')],
               help='Whether the backup records the Galera cluster state '
                    '(xtrabackup_galera_info), needed to rejoin a restored '
                    'node to its cluster by IST instead of a full SST.'),
    cfg.StrOpt('use_memory',
               help='Memory --prepare may use for the InnoDB buffer pool '
                    'on restore (e.g. 1G); unset: mariadb-backup\'s '
                    'default of 100M. More memory makes applying the redo '
                    'log of a busy server faster.'),
    cfg.StrOpt('os_user', default='mysql',
               help='Owner given to a restored data directory when the '
                    'agent runs as root and there is no previous data '
                    'directory to take the owner from.'),
    cfg.ListOpt('units', default=['mariadb'],
                help='Units of the database server. A physical restore '
                     'stops them before it swaps the data directory and '
                     'starts them after; it refuses to run when none of '
                     'them exists on the node.'),
    cfg.IntOpt('nice', default=0, min=0, max=19,
               help='Niceness mariadb-backup runs with during a backup '
                    '(0: as the agent). On a Galera member the copy '
                    'competes for CPU with the node\'s own applier and '
                    'clients; 10-19 gives them the CPU first. The '
                    'compression of the stream runs in the agent: see '
                    '[storage] compression_threads and compression_level.'),
    cfg.StrOpt('ionice_class', default='none',
               choices=[('none', 'The I/O priority of the agent.'),
                        ('best-effort', 'Lowest best-effort priority '
                                        '(ionice -c 2 -n 7).'),
                        ('idle', 'Only when no other process reads or '
                                 'writes the disk (ionice -c 3).')],
               help='I/O scheduling class of mariadb-backup during a '
                    'backup, so that its reads of the data files do not '
                    'slow the server\'s own I/O (the schedulers bfq and '
                    'mq-deadline honour it; none ignores it).'),
    cfg.IntOpt('throttle', default=0, min=0,
               help='At most this many read-write pairs of 10 MB per '
                    'second while copying InnoDB data files (mariadb-'
                    'backup --throttle); 0: unlimited. The copy of a '
                    'large server then takes longer, and disturbs its '
                    'server less.'),
    cfg.ListOpt('extra_args', default=[],
                help='Further mariadb-backup options for --backup, e.g. '
                     '--ftwrl-wait-timeout=300. Never put credentials '
                     'here: argv is visible to every local user.'),
]


def register_opts(conf):
    conf.register_group(mariabackup_group)
    conf.register_opts(mariabackup_opts, group=mariabackup_group)


def list_opts():
    return {mariabackup_group: mariabackup_opts}
