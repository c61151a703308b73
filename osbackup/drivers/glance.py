"""Glance: configuration, state and logs; the image store on request."""

from osbackup.definitions import glance
from osbackup.drivers import fileset


class GlanceDriver(fileset.FileSetDriver):
    definition = glance.DEFINITION
