"""[DEFAULT] options shared by every osbackup process."""

import socket

from oslo_config import cfg

default_opts = [
    cfg.StrOpt('host',
               default=socket.gethostname(),
               sample_default='<current_hostname>',
               help='Name of this node. Agents listen on the RPC server '
                    'name equal to it, so it must be the name the '
                    'conductor and operators use to address the node.'),
    cfg.StrOpt('state_path',
               default='/var/lib/osbackup',
               help='Top-level directory for osbackup state: the '
                    'all-in-one SQLite catalogue, the agent task journal '
                    'and the default local archive directory.'),
    cfg.StrOpt('service_manager',
               default='systemd',
               choices=[('systemd', 'Stop and start units with systemctl.'),
                        ('command', 'Use the command templates of the '
                                    '[service_command] group.')],
               help='How the agent stops, starts and checks service units '
                    'during a restore (an osbackup.unit_managers '
                    'entry point).'),
]


def register_opts(conf):
    conf.register_opts(default_opts)


def list_opts():
    return {'DEFAULT': default_opts}
