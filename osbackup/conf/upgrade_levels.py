"""[upgrade_levels] options: RPC version caps for rolling upgrades."""

from oslo_config import cfg

upgrade_group = cfg.OptGroup('upgrade_levels', title='RPC version caps')

upgrade_opts = [
    cfg.StrOpt('agent',
               help='Highest agent RPC API version the conductor sends '
                    '(set it to the oldest agent\'s version during a '
                    'rolling upgrade). Unset: the newest.'),
    cfg.StrOpt('conductor',
               help='Highest conductor RPC API version agents and '
                    'osbackup-manage send. Unset: the newest.'),
]


def register_opts(conf):
    conf.register_group(upgrade_group)
    conf.register_opts(upgrade_opts, group=upgrade_group)


def list_opts():
    return {upgrade_group: upgrade_opts}
