"""Heat: /etc/heat, logs and database; heat.conf holds auth_encryption_key.

The key encrypts the stack credentials and parameters in heat's database:
a database restored without it cannot be read.
"""

from osbackup.definitions import base

DEFINITION = base.ServiceDefinition(
    name='heat', title='Heat file-set driver',
    package='heat-common',
    migrations=('/usr/lib/python3/dist-packages/'
                'heat/db/migrations/versions',),
    paths=('/etc/heat', '/var/lib/heat'),
    log_paths=('/var/log/heat',),
    markers=('/etc/heat',),
    units=('heat-api', 'heat-api-cfn', 'heat-engine'),
    databases=('heat',),
    secrets=(base.Secret('/etc/heat/heat.conf',
                         '[DEFAULT] auth_encryption_key: decrypts the '
                         'credentials heat stores in its database',
                         critical=True),))
