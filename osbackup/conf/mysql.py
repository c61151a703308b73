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
                     'performance_schema, sys) and the mysql system '
                     'database: its users and grants are kept as their own '
                     'artifact instead (see backup_accounts), which loads '
                     'into another server version where a dump of the '
                     'mysql schema does not. Name mysql here to dump it '
                     'anyway.'),
    cfg.BoolOpt('backup_accounts', default=True,
                help='Keep the server\'s accounts, roles and their grants '
                     'as an artifact of their own, "accounts": the CREATE '
                     'USER, CREATE ROLE and GRANT statements of "mariadb-'
                     'dump --system=users --insert-ignore" (MariaDB 10.5.9, '
                     '10.4.18, 10.3.28 or later; MySQL\'s mysqldump has no '
                     'such option: turn this off). A restore loads it before '
                     'the service databases; an account that exists keeps '
                     'its place and gets the backup\'s password and grants '
                     'added (restore create --skip-accounts leaves accounts '
                     'alone).'),
    cfg.ListOpt('accounts', default=[],
                help='Accounts and roles the accounts artifact keeps, by '
                     'user or role name (every host), shell-style patterns '
                     'allowed (nova, keystone, heat*). Empty: all but the '
                     'server\'s own (root, mariadb.sys, mysql, debian-sys-'
                     'maint, PUBLIC), which a new server\'s installation '
                     'makes itself, and through which osbackup already '
                     'reaches a server it restores. A restore loads only '
                     'the accounts the artifact holds.'),
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
    cfg.ListOpt('units', default=['mariadb'],
                help='Units of the database server on this node. A '
                     'restore of a Galera cluster (and "osbackup-manage '
                     'cluster recover") stops and starts the server of '
                     'every member as these units through the service '
                     'manager; the member that starts the new cluster '
                     'runs [galera] bootstrap_command instead.'),
    cfg.StrOpt('galera_backup_node',
               help='Galera clusters: host name of the agent whose member '
                    'a backup of the cluster runs on. A backup of a '
                    'cluster runs once, on one member. When this node is '
                    'not Synced and wsrep_ready, another member is chosen '
                    '(and the choice logged). Unset: a Synced member not '
                    'in galera_avoid_nodes with the fewest client '
                    'connections. Read by the conductor.'),
    cfg.StrOpt('galera_binlog_node',
               help='Galera clusters: host name of the agent whose member '
                    'the binary log of the cluster is archived on (its '
                    'server needs log_bin and log_slave_updates). Unset: '
                    'the first member by host name whose agent archives. '
                    'The archive stays on that member: archived positions '
                    'are a member\'s own. Read by the conductor.'),
    cfg.ListOpt('galera_avoid_nodes', default=[],
                help='Galera clusters: host names of agents whose members '
                     'a backup runs on only when no other member is '
                     'Synced, typically the write endpoint behind the '
                     'load balancer. Read by the conductor.'),
    cfg.StrOpt('mysqlbinlog_path', default='mariadb-binlog',
               help='Path or name of the mariadb-binlog (or mysqlbinlog) '
                    'executable a point-in-time restore replays the '
                    'archived binary logs with.'),
    cfg.IntOpt('binlog_archive_interval', default=60, min=0,
               help='Point-in-time recovery: seconds between two shipments '
                    'of the binary log to the backup targets (the "binlog" '
                    'service). Each shipment sends the bytes the server '
                    'wrote since the last one: the rest of every file it '
                    'rotated and what the open file holds so far, so this '
                    'is about the recovery point objective. Needs log_bin '
                    'with binlog_format=ROW on the server and the agent on '
                    'the database node (it reads the files the server '
                    'lists in SHOW BINARY LOGS). 0: archiving off. Read by '
                    'the agent and reported in its heartbeat.'),
]


def register_opts(conf):
    conf.register_group(mysql_group)
    conf.register_opts(mysql_opts, group=mysql_group)


def list_opts():
    return {mysql_group: mysql_opts}
