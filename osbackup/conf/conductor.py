"""[conductor] options: scheduling, task deadlines and agent liveness."""

from oslo_config import cfg

conductor_group = cfg.OptGroup('conductor', title='osbackup conductor options')

conductor_opts = [
    cfg.IntOpt('agent_down_time',
               default=60, min=1,
               help='Seconds without a heartbeat after which an agent is '
                    'shown as down and receives no new tasks. Keep it at '
                    'least twice [agent] report_interval.'),
    cfg.IntOpt('task_start_timeout',
               default=120, min=1,
               help='Seconds a dispatched task may wait for its agent to '
                    'report that it started before it is marked '
                    'TIMED_OUT.'),
    cfg.IntOpt('task_silence_timeout',
               default=300, min=1,
               help='Seconds a running task may go without a progress '
                    'report before it is marked TIMED_OUT (the agent died '
                    'or lost its broker connection).'),
    cfg.IntOpt('task_timeout',
               default=21600, min=1,
               help='Hard deadline in seconds for any task; agents refuse '
                    'tasks delivered after it.'),
    cfg.IntOpt('periodic_interval',
               default=10, min=1,
               help='Seconds between the conductor\'s periodic checks '
                    '(deadlines, due policies).'),
    cfg.BoolOpt('run_policies',
                default=True,
                help='Run due policies on this conductor: scheduled '
                     'backups, scheduled verifications and pruning. Safe '
                     'with several conductors: each run is claimed once '
                     'in the catalogue.'),
    cfg.StrOpt('timezone',
               default='UTC',
               help='IANA time zone in which policy schedules (cron '
                    'expressions) and daily/weekly/monthly retention are '
                    'evaluated, e.g. Europe/Berlin; also the time zone of '
                    'the time of "restore create --to-time" (a time ending '
                    'in Z is UTC).'),
    cfg.IntOpt('prune_interval',
               default=3600, min=60,
               help='Seconds between the conductor\'s automatic pruning '
                    'of backups that their policy no longer keeps.'),
    cfg.IntOpt('storage_sync_interval',
               default=0, min=0,
               help='Seconds between reconciliations of the catalogue with '
                    'the storage targets (0: never). Each lists every '
                    'target the catalogue uses and marks "missing" the '
                    'artifacts none of whose copies is stored any more, so '
                    'that no restore is offered from them. Only for '
                    'targets this conductor sees as the agents do (object '
                    'stores, ssh, a shared local_path); a target without '
                    'any of this deployment\'s records is skipped.'),
    cfg.IntOpt('rpc_threads',
               default=8, min=1,
               help='Threads handling RPC messages (agent reports, '
                    'requests) in one conductor process. Each report costs '
                    'a few milliseconds of database work; more threads '
                    'than database connections ([database] max_pool_size) '
                    'only add contention. Scale out with more conductor '
                    'processes instead.'),
    cfg.BoolOpt('incremental_backups',
                default=True,
                help='Back up file sets incrementally: a file whose inode, '
                     'size, mtime and ctime are unchanged since the '
                     'previous backup of the same host and service is not '
                     'read or stored again, only recorded. Databases are '
                     'always dumped whole. Restores of an incremental '
                     'backup read the earlier backups it is based on, and '
                     'pruning keeps those as long as it is kept.'),
    cfg.IntOpt('full_backup_every',
               default=7, min=1,
               help='Length of a chain of file-set backups: every this '
                    'many backups of a host and service, a full backup '
                    'reads every file again (the periodic full read that '
                    'catches what metadata cannot show). 1 makes every '
                    'backup full.'),
    cfg.IntOpt('rpc_timeout',
               default=60, min=1,
               help='Seconds osbackup-manage waits for a conductor to '
                    'answer a request.'),
    cfg.IntOpt('dispatch_threads',
               default=8, min=1,
               help='Threads casting the tasks of one wave (a backup of '
                    'many hosts) at once. Each cast waits for the broker '
                    'to confirm it; a few threads overlap those waits. '
                    'Each holds one connection of oslo.messaging\'s sender '
                    'pool ([oslo_messaging_rabbit] rpc_conn_pool_size, '
                    'default 30), which must also serve rpc_threads: the '
                    'conductor lowers this value to fit the pool (with a '
                    'warning) rather than let casts open a connection '
                    'each.'),
    cfg.IntOpt('report_batch_size',
               default=500, min=1,
               help='Most agents\' task reports (started, progress, '
                    'finished) the conductor writes to the catalogue in '
                    'one transaction. Reports that arrive while a batch is '
                    'written make up the next one, so a quiet fleet still '
                    'sees each report written at once; a fan-out to '
                    'thousands of agents costs a few transactions instead '
                    'of one per report.'),
]


def register_opts(conf):
    conf.register_group(conductor_group)
    conf.register_opts(conductor_opts, group=conductor_group)


def list_opts():
    return {conductor_group: conductor_opts}
