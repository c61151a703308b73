"""osbackup configuration: every option group registered on the global CONF.

Code does ``import osbackup.conf; CONF = osbackup.conf.CONF`` and never
registers options elsewhere.
"""

from oslo_config import cfg

from osbackup.conf import agent
from osbackup.conf import conductor
from osbackup.conf import database
from osbackup.conf import default
from osbackup.conf import galera
from osbackup.conf import manage
from osbackup.conf import mariabackup
from osbackup.conf import metrics
from osbackup.conf import mysql
from osbackup.conf import rpc
from osbackup.conf import s3_storage
from osbackup.conf import service_command
from osbackup.conf import services
from osbackup.conf import ssh_storage
from osbackup.conf import storage
from osbackup.conf import swift_storage
from osbackup.conf import upgrade_levels

CONF = cfg.CONF

default.register_opts(CONF)
galera.register_opts(CONF)
agent.register_opts(CONF)
conductor.register_opts(CONF)
database.register_opts(CONF)
manage.register_opts(CONF)
mariabackup.register_opts(CONF)
metrics.register_opts(CONF)
mysql.register_opts(CONF)
rpc.register_opts(CONF)
s3_storage.register_opts(CONF)
service_command.register_opts(CONF)
services.register_opts(CONF)
ssh_storage.register_opts(CONF)
storage.register_opts(CONF)
swift_storage.register_opts(CONF)
upgrade_levels.register_opts(CONF)
