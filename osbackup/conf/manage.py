"""[manage] options: how osbackup-manage talks to the fleet."""

from oslo_config import cfg

manage_group = cfg.OptGroup('manage', title='osbackup-manage')

manage_opts = [
    cfg.IntOpt('broker_timeout',
               default=15, min=1,
               help='Seconds osbackup-manage tries to connect to the '
                    'message broker (transport_url) before it gives up '
                    'with an error naming the broker. It does not limit '
                    'the wait for the conductor\'s answer once connected '
                    '([conductor] rpc_timeout).'),
]


def register_opts(conf):
    conf.register_group(manage_group)
    conf.register_opts(manage_opts, group=manage_group)


def list_opts():
    return {manage_group: manage_opts}
