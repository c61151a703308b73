"""Neutron: /etc/neutron (ML2 and agent configs), state, logs, database.

With OVN the network's truth is in the OVN northbound database too (the
``ovn`` definition); this one holds neutron's own files.
"""

from osbackup.definitions import base

DEFINITION = base.ServiceDefinition(
    name='neutron', title='Neutron file-set driver',
    package='neutron-common',
    migrations=('/usr/lib/python3/dist-packages/'
                'neutron/db/migration/alembic_migrations/versions',),
    paths=('/etc/neutron', '/var/lib/neutron'),
    log_paths=('/var/log/neutron',),
    markers=('/etc/neutron',),
    units=('neutron-server', 'neutron-rpc-server', 'neutron-periodic-workers',
           'neutron-openvswitch-agent', 'neutron-linuxbridge-agent',
           'neutron-ovn-metadata-agent', 'neutron-metadata-agent',
           'neutron-dhcp-agent', 'neutron-l3-agent'),
    databases=('neutron',))
