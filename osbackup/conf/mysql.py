"""[mysql] options: the MySQL/MariaDB server the mysql driver dumps."""

from oslo_config import cfg

mysql_group = cfg.OptGroup('mysql', title='MySQL/MariaDB backup driver')

mysql_opts = [
    cfg.StrOpt('host', default='localhost',
               help='Server to dump. "localhost" uses the local socket.'),
    cfg.PortOpt('port', default=3306, help='TCP port of the server.'),
    cfg.StrOpt('socket',
               help='Unix socket of the server (overrides host and port).'),
    cfg.StrOpt('user', default='root',
               help='Account used to dump and restore. It needs SELECT, '
                    'SHOW VIEW, TRIGGER, EVENT, LOCK TABLES and, for '
                    'restores, full rights on the restored databases.'),
    cfg.StrOpt('password', default='', secret=True,
               help='Password of the account. It reaches mysqldump through '
                    'an option file on a pipe, never through argv or the '
                    'environment.'),
    cfg.ListOpt('databases', default=[],
                help='Databases to back up. Empty: every database except '
                     'the server\'s internal schemas (information_schema, '
                     'performance_schema, sys); the mysql system database '
                     'with users and grants is included.'),
    cfg.StrOpt('mysqldump_path', default='mysqldump',
               help='Path or name of the mysqldump (or mariadb-dump) '
                    'executable.'),
    cfg.StrOpt('mysql_path', default='mysql',
               help='Path or name of the mysql (or mariadb) client '
                    'executable.'),
    cfg.IntOpt('restore_parallelism', default=0, min=0,
               help='Number of mysql clients that load the tables of one '
                    'database at once during a restore (and a scratch-load '
                    'restore test). Tables load side by side; views, '
                    'routines and events after them, in dump order. 0: the '
                    'number of CPUs, at most 4: the server does the work, '
                    'and more clients than cores, or than about 4 on bigger '
                    'servers, mostly wait on each other (InnoDB log, '
                    'locks). 1: the dump is loaded serially as it is, by '
                    'one client (the way "mysql < dump" does). Each client '
                    'reads and decompresses the artifact on its own; an '
                    'off-site or encrypted artifact is first fetched once '
                    'into <state_path>/agent/scratch (an unlinked file), '
                    'and read from there.'),
]


def register_opts(conf):
    conf.register_group(mysql_group)
    conf.register_opts(mysql_opts, group=mysql_group)


def list_opts():
    return {mysql_group: mysql_opts}
