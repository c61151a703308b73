"""Nova: configuration, state and logs; instance disks on request."""

from osbackup.definitions import nova
from osbackup.drivers import fileset


class NovaDriver(fileset.FileSetDriver):
    definition = nova.DEFINITION
