"""Horizon: local_settings.py and the secret_key that signs sessions."""

from osbackup.definitions import base

DEFINITION = base.ServiceDefinition(
    name='horizon', title='Horizon file-set driver',
    package='openstack-dashboard',
    paths=('/etc/openstack-dashboard', '/var/lib/openstack-dashboard'),
    markers=('/etc/openstack-dashboard',),
    units=('apache2',),
    secrets=(base.Secret('/var/lib/openstack-dashboard/secret_key',
                         'Django SECRET_KEY: sessions and signed data of '
                         'the dashboard'),))
