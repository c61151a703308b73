"""[agent] options: the per-node agent."""

from oslo_config import cfg

agent_group = cfg.OptGroup('agent', title='osbackup agent options')

agent_opts = [
    cfg.StrOpt('root_path',
               default='/',
               help='Directory under which all service paths (/etc/nova, '
                    '/var/lib/glance, ...) are resolved. Leave at / on a '
                    'real node; point it at a node tree for tests and '
                    'demos.'),
    cfg.ListOpt('drivers',
                help='Names of the backup drivers (osbackup.drivers entry '
                     'points) this agent runs. Default: every installed '
                     'driver; drivers whose service is absent on the node '
                     'report their tasks as skipped.'),
    cfg.ListOpt('extra_filesets', default=[],
                help='Names of operator-defined file sets (HAProxy and '
                     'keepalived configuration, TLS certificates). Each '
                     'name gets an option group of its own with paths, '
                     'log_paths, excludes, units and secrets, and is '
                     'backed up and restored like a built-in service. A '
                     'path outside the node root or claimed by another '
                     'service is refused at start-up.'),
    cfg.IntOpt('report_interval',
               default=10, min=1,
               help='Seconds between heartbeats sent to the conductor.'),
    cfg.IntOpt('conductor_check_interval',
               default=60, min=1,
               help='Seconds between the signed calls with which the agent '
                    'checks that a conductor accepts its messages (and '
                    "reads the conductor's clock). While none answers, the "
                    'agent logs an error once per interval: a wrong or '
                    'missing [DEFAULT] rpc_signing_key_file otherwise goes '
                    'unnoticed on the agent\'s side.'),
    cfg.IntOpt('progress_interval',
               default=5, min=1,
               help='Seconds between progress reports of a running task.'),
    cfg.FloatOpt('start_report_delay',
                 default=1.0, min=0,
                 help='Seconds a task runs before the agent reports that it '
                      'started; a task ending sooner sends only its final '
                      'report. Saves a third of the messages (and of the '
                      "conductor's work) when a fleet backs up small file "
                      'sets. 0 reports every start at once. Keep it well '
                      'below [conductor] task_start_timeout.'),
    cfg.IntOpt('max_parallel_tasks',
               default=2, min=1,
               help='Tasks (one service each) this agent runs at once.'),
    cfg.IntOpt('unit_check_timeout',
               default=30, min=1,
               help='Seconds a restore waits for a started unit to become '
                    'active before it rolls back.'),
    cfg.IntOpt('unit_check_settle',
               default=3, min=0,
               help='Seconds a unit must stay active after a restore '
                    'starts it: a daemon that dies on a bad restored '
                    'config often looks active for a moment.'),
    cfg.IntOpt('free_space_margin',
               default=20, min=0, max=1000,
               help='Before a backup, every target must have as much free '
                    'space as the previous backup of that service on this '
                    'host took, plus this many percent; otherwise the task '
                    'fails at once and nothing is written. The first '
                    'backup of a service is not checked.'),
    cfg.FloatOpt('bandwidth_limit',
                 default=0, min=0,
                 help='Cap in MiB/s on the rate artifacts are written to '
                      'any storage target (0: no cap). Keeps a backup from '
                      'saturating a controller\'s disks or uplink.'),
    cfg.StrOpt('ionice_class',
               default='best-effort',
               choices=[('idle', 'Only use the disk when nothing else '
                                 'does (may starve on busy nodes).'),
                        ('best-effort', 'Normal scheduling at '
                                        '[agent] ionice_level.'),
                        ('none', 'Leave the I/O priority alone.')],
               help='I/O scheduling class of the agent and its children '
                    '(mysqldump), so a backup never starves the services.'),
    cfg.IntOpt('ionice_level',
               default=7, min=0, max=7,
               help='Priority within the best-effort class, 0 (high) to 7 '
                    '(low).'),
    cfg.IntOpt('nice',
               default=10, min=0, max=19,
               help='Scheduling niceness of the agent\'s work threads and '
                    'children (mysqldump), so a backup never starves the '
                    'services of a busy controller.'),
    cfg.IntOpt('package_versions_interval',
               default=300, min=0,
               help='Seconds the installed versions of the services\' '
                    'packages (dpkg-query, one run for all) are kept '
                    'before they are asked again. The heartbeat reports '
                    'them, backups record them in their artifacts, and '
                    '"restore create --dry-run" names where they differ. '
                    '0: never asked (nothing is known).'),
]


def register_opts(conf):
    conf.register_group(agent_group)
    conf.register_opts(agent_opts, group=agent_group)


def list_opts():
    return {agent_group: agent_opts}
