"""MariaDB binary-log archiving for point-in-time recovery.

Options in [mysql] (``binlog_archive_interval``); the driver is
osbackup/drivers/binlog_archive.py.
"""

from osbackup.definitions import base

#: The service name of archived binary logs, in artifacts and plans.
NAME = 'binlog'

DEFINITION = base.ServiceDefinition(
    name=NAME, title='MariaDB binary log archive',
    fileset=False, after=('mysql',))
