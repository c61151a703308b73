"""Glance: configuration, state and logs; the image store on request."""

from osbackup.definitions import base

DEFINITION = base.ServiceDefinition(
    name='glance', title='Glance file-set driver',
    package='glance-common',
    migrations=('/usr/lib/python3/dist-packages/'
                'glance/db/sqlalchemy/alembic_migrations/versions',),
    paths=('/etc/glance', '/var/lib/glance'),
    log_paths=('/var/log/glance',),
    optional_paths=(base.OptionalPath('include_images',
                                      '/var/lib/glance/images',
                                      'the image store of the file '
                                      'backend'),),
    markers=('/etc/glance',),
    units=('glance-api',),
    databases=('glance',))
