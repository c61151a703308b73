"""Keystone: configuration with the fernet and credential keys, logs.

Every other service authenticates against keystone, so it is restored
right after the database and the message bus.
"""

from osbackup.definitions import base

DEFINITION = base.ServiceDefinition(
    name='keystone', title='Keystone file-set driver',
    package='keystone',
    migrations=('/usr/lib/python3/dist-packages/'
                'keystone/common/sql/migrations/versions',),
    paths=('/etc/keystone', '/var/lib/keystone'),
    log_paths=('/var/log/keystone',),
    markers=('/etc/keystone',),
    units=('apache2',),
    databases=('keystone',),
    secrets=(base.Secret('/etc/keystone/fernet-keys',
                         'fernet token keys: without them every issued '
                         'token is invalid'),
             base.Secret('/etc/keystone/credential-keys',
                         'keys encrypting the credentials table: without '
                         'them stored credentials cannot be read',
                         critical=True)),
    after=base.FOUNDATION)
