"""Cinder: configuration, state and logs."""

from osbackup.definitions import base

DEFINITION = base.ServiceDefinition(
    name='cinder', title='Cinder file-set driver',
    package='cinder-common',
    migrations=('/usr/lib/python3/dist-packages/'
                'cinder/db/migrations/versions',),
    paths=('/etc/cinder', '/var/lib/cinder'),
    log_paths=('/var/log/cinder',),
    markers=('/etc/cinder',),
    units=('cinder-api', 'cinder-scheduler', 'cinder-volume',
           'cinder-backup'),
    databases=('cinder',))
