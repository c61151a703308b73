"""Keystone: configuration (with fernet and credential keys) and logs."""

from osbackup.definitions import keystone
from osbackup.drivers import fileset


class KeystoneDriver(fileset.FileSetDriver):
    definition = keystone.DEFINITION
