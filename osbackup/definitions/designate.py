"""Designate: /etc/designate with pools.yaml, logs and database."""

from osbackup.definitions import base

DEFINITION = base.ServiceDefinition(
    name='designate', title='Designate file-set driver',
    package='designate-common',
    # impl_sqlalchemy until 2023.2 (Debian 12), sqlalchemy since.
    migrations=('/usr/lib/python3/dist-packages/'
                'designate/storage/impl_sqlalchemy/alembic/versions',
                '/usr/lib/python3/dist-packages/'
                'designate/storage/sqlalchemy/alembic/versions'),
    paths=('/etc/designate', '/var/lib/designate'),
    log_paths=('/var/log/designate',),
    markers=('/etc/designate',),
    units=('designate-api', 'designate-central', 'designate-worker',
           'designate-producer', 'designate-mdns'),
    databases=('designate',),
    secrets=(base.Secret('/etc/designate/pools.yaml',
                         'the DNS servers and their TSIG keys: designate '
                         'cannot update a zone without it'),))
