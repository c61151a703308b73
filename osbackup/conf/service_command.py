"""[service_command] options: the command service manager's templates."""

from oslo_config import cfg

service_command_group = cfg.OptGroup(
    'service_command', title='Command service manager',
    help='Used when [DEFAULT] service_manager = command, on hosts without '
         'systemd. Each template is split like a shell word list (no '
         'shell is run) after {unit} is replaced by the unit name.')

service_command_opts = [
    cfg.StrOpt('start', default='service {unit} start',
               help='Command that starts a unit.'),
    cfg.StrOpt('stop', default='service {unit} stop',
               help='Command that stops a unit.'),
    cfg.StrOpt('status', default='service {unit} status',
               help='Command that exits 0 when a unit is running.'),
    cfg.IntOpt('timeout', default=90, min=1,
               help='Seconds a start, stop or status command may take.'),
]


def register_opts(conf):
    conf.register_group(service_command_group)
    conf.register_opts(service_command_opts, group=service_command_group)


def list_opts():
    return {service_command_group: service_command_opts}
