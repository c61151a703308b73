"""Cinder: configuration, state and logs."""

from osbackup.definitions import cinder
from osbackup.drivers import fileset


class CinderDriver(fileset.FileSetDriver):
    definition = cinder.DEFINITION
