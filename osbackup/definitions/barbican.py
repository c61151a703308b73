"""Barbican: /etc/barbican with the simple_crypto key-encryption key.

The KEK ([simple_crypto_plugin] kek in barbican.conf) encrypts every
stored secret's key: without it every secret in barbican's database is
gone.
"""

from osbackup.definitions import base

DEFINITION = base.ServiceDefinition(
    name='barbican', title='Barbican file-set driver',
    package='barbican-common',
    migrations=('/usr/lib/python3/dist-packages/'
                'barbican/model/migration/alembic_migrations/versions',),
    paths=('/etc/barbican', '/var/lib/barbican'),
    log_paths=('/var/log/barbican',),
    markers=('/etc/barbican',),
    units=('barbican-api', 'barbican-worker', 'barbican-keystone-listener'),
    databases=('barbican',),
    secrets=(base.Secret('/etc/barbican/barbican.conf',
                         '[simple_crypto_plugin] kek: the key-encryption '
                         'key of every stored secret', critical=True),))
