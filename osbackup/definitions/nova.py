"""Nova: configuration, state and logs; instance disks on request."""

from osbackup.definitions import base

DEFINITION = base.ServiceDefinition(
    name='nova', title='Nova file-set driver',
    package='nova-common',
    migrations=('/usr/lib/python3/dist-packages/'
                'nova/db/main/migrations/versions',
                '/usr/lib/python3/dist-packages/'
                'nova/db/api/migrations/versions'),
    paths=('/etc/nova', '/var/lib/nova'),
    log_paths=('/var/log/nova',),
    optional_paths=(base.OptionalPath('include_instances',
                                      '/var/lib/nova/instances',
                                      'instance disks of a compute node'),),
    markers=('/etc/nova',),
    units=('nova-api', 'nova-scheduler', 'nova-conductor', 'nova-compute',
           'nova-novncproxy'),
    databases=('nova', 'nova_api', 'nova_cell0'))
