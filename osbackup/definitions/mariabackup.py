"""A physical copy of the whole local MariaDB server (mariadb-backup).

Options and units in [mariabackup] (osbackup.conf.mariabackup).
"""

from osbackup.definitions import base

DEFINITION = base.ServiceDefinition(
    name='mariabackup', title='MariaDB physical backup driver',
    package='mariadb-backup',
    fileset=False, after=())
