"""MySQL/MariaDB logical dumps; options in [mysql] (osbackup.conf.mysql)."""

from osbackup.definitions import base

#: The service name of logical database dumps, in artifacts and plans.
NAME = 'mysql'

DEFINITION = base.ServiceDefinition(
    name=NAME, title='MySQL/MariaDB backup driver',
    package='mariadb-server',
    fileset=False, after=())
