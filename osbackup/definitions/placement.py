"""Placement: /etc/placement and its database (served by apache2)."""

from osbackup.definitions import base

DEFINITION = base.ServiceDefinition(
    name='placement', title='Placement file-set driver',
    paths=('/etc/placement',),
    log_paths=('/var/log/placement',),
    units=('placement-api',),
    databases=('placement',))
