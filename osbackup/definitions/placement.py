"""Placement: /etc/placement and its database (served by apache2)."""

from osbackup.definitions import base

DEFINITION = base.ServiceDefinition(
    name='placement', title='Placement file-set driver',
    package='placement-common',
    migrations=('/usr/lib/python3/dist-packages/'
                'placement/db/sqlalchemy/alembic/versions',),
    paths=('/etc/placement',),
    log_paths=('/var/log/placement',),
    units=('placement-api',),
    databases=('placement',))
