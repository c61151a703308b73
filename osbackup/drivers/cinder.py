"""Cinder: configuration, state and logs."""

from osbackup.drivers import fileset


class CinderDriver(fileset.FileSetDriver):
    name = 'cinder'
    PATHS = ('/etc/cinder', '/var/lib/cinder')
    LOG_PATHS = ('/var/log/cinder',)
    MARKERS = ('/etc/cinder',)
