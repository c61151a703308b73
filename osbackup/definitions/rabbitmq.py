"""RabbitMQ definitions: users (with password hashes), vhosts, permissions,
policies, exchanges and queues, exported with ``rabbitmqctl``.

The message bus comes up before every service in a restore.
"""

from oslo_config import cfg

from osbackup.definitions import base

DEFINITION = base.ServiceDefinition(
    name='rabbitmq', title='RabbitMQ definitions driver',
    package='rabbitmq-server',
    units=('rabbitmq-server',),
    markers=('/var/lib/rabbitmq',),
    fileset=False, after=(),
    extra_opts=(
        cfg.StrOpt('ctl_command', default='rabbitmqctl',
                   help='Command (split like a shell line) that reaches the '
                        'broker node, e.g. "rabbitmqctl -n rabbit@ctl1". '
                        'export_definitions and import_definitions are '
                        'appended to it.'),
        cfg.IntOpt('command_timeout', default=120, min=1,
                   help='Seconds an export or import may take.'),
    ))
