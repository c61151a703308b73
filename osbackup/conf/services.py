"""Per-service option groups ([nova], [glance], [keystone], [cinder], [swift]).

Each group says what the service's file-set driver archives and which units
a restore stops and starts.
"""

from oslo_config import cfg

_UNITS = {
    'nova': ['nova-api', 'nova-scheduler', 'nova-conductor', 'nova-compute',
             'nova-novncproxy'],
    'glance': ['glance-api'],
    'keystone': ['apache2'],
    'cinder': ['cinder-api', 'cinder-scheduler', 'cinder-volume',
               'cinder-backup'],
    'swift': ['swift-proxy', 'swift-account', 'swift-container',
              'swift-object'],
}

# Databases each service owns: restoring the service loads them too, and
# loading them stops the service's units first.
_DATABASES = {
    'nova': ['nova', 'nova_api', 'nova_cell0'],
    'glance': ['glance'],
    'keystone': ['keystone'],
    'cinder': ['cinder'],
    'swift': [],
}

# Large data directories that are skipped unless the operator asks.
_OPTIONAL = {
    'nova': ('include_instances', '/var/lib/nova/instances',
             'instance disks of a compute node'),
    'glance': ('include_images', '/var/lib/glance/images',
               'the image store of the file backend'),
}

SERVICES = tuple(_UNITS)


def _opts(service):
    opts = [
        cfg.BoolOpt('include_logs', default=True,
                    help='Archive /var/log/%s too. Turn off where logs are '
                         'centralised.' % service),
        cfg.ListOpt('units', default=_UNITS[service],
                    help='Units a restore stops before and starts after '
                         'replacing %s\'s files. Units not installed on a '
                         'host are ignored there.' % service),
        cfg.ListOpt('databases', default=_DATABASES[service],
                    help='Databases (mysql driver artifacts) that belong to '
                         '%s. Restoring %s loads them, and loading them '
                         'stops %s\'s units first. Read by the conductor.'
                         % (service, service, service)),
    ]
    if service in _OPTIONAL:
        name, path, what = _OPTIONAL[service]
        opts.append(cfg.BoolOpt(
            name, default=False,
            help='Archive %s (%s). Large; off by default.' % (path, what)))
    return opts


_GROUPS = {service: (cfg.OptGroup(service, title='%s file-set driver'
                                  % service.capitalize()), _opts(service))
           for service in SERVICES}


def register_opts(conf):
    for group, opts in _GROUPS.values():
        conf.register_group(group)
        conf.register_opts(opts, group=group)


def list_opts():
    return {group: opts for group, opts in _GROUPS.values()}
