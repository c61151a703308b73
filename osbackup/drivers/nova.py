"""Nova: configuration, state and logs; instance disks on request."""

from osbackup.drivers import fileset


class NovaDriver(fileset.FileSetDriver):
    name = 'nova'
    PATHS = ('/etc/nova', '/var/lib/nova')
    LOG_PATHS = ('/var/log/nova',)
    OPTIONAL_PATHS = (('include_instances', '/var/lib/nova/instances'),)
    MARKERS = ('/etc/nova',)
