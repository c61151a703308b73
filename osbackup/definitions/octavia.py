"""Octavia: /etc/octavia with certs/ (CA, client certificates and keys).

Lose the CA or its key and no amphora can be reached: every load balancer
must be rebuilt.
"""

from osbackup.definitions import base

DEFINITION = base.ServiceDefinition(
    name='octavia', title='Octavia file-set driver',
    package='octavia-common',
    migrations=('/usr/lib/python3/dist-packages/'
                'octavia/db/migration/alembic_migrations/versions',),
    paths=('/etc/octavia', '/var/lib/octavia'),
    log_paths=('/var/log/octavia',),
    markers=('/etc/octavia',),
    units=('octavia-api', 'octavia-worker', 'octavia-health-manager',
           'octavia-housekeeping', 'octavia-driver-agent'),
    databases=('octavia', 'octavia_persistence'),
    secrets=(base.Secret('/etc/octavia/certs',
                         'amphora CA, client certificates and keys: '
                         'without them every load balancer is lost',
                         critical=True),))
