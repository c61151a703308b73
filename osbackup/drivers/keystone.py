"""Keystone: configuration (with fernet and credential keys) and logs."""

from osbackup.drivers import fileset


class KeystoneDriver(fileset.FileSetDriver):
    name = 'keystone'
    PATHS = ('/etc/keystone', '/var/lib/keystone')
    LOG_PATHS = ('/var/log/keystone',)
    MARKERS = ('/etc/keystone',)
