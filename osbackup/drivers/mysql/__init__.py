"""The mysql driver: one consistent mysqldump of the control plane databases.

A single mysqldump run takes one snapshot (``--single-transaction``) of all
databases. Its output is split while it streams into one artifact per
database, each a complete dump (header, that database's sections, footer)
that loads on its own. A restore loads one database's dump with several
mysql clients, one table per client at a time (see load._ParallelLoad).
Credentials reach the clients through an option file on a pipe, never
through argv or the environment, which other local users can read.

The server's accounts and grants are an artifact of their own
(``mariadb-dump --system=users``, accounts.py), not a dump of the mysql
schema.

The driver's jobs live in their own modules: spawn (credentials and
client processes), dumpfile (the text of a dump), dump, load, verify,
accounts and schema (alembic revisions).
"""

import os
import shutil

import psutil

from osbackup.drivers import base
from osbackup.drivers import galera
from osbackup.drivers.mysql import accounts
from osbackup.drivers.mysql import dump
from osbackup.drivers.mysql import dumpfile
from osbackup.drivers.mysql import load
from osbackup.drivers.mysql import schema
from osbackup.drivers.mysql import spawn
from osbackup.drivers.mysql import verify

LOCAL_HOSTS = ('localhost', '127.0.0.1', '::1')
SERVER_PROCESSES = ('mysqld', 'mariadbd')
# The system database of an installed server: a stopped server on a
# controller must fail its backup, not be skipped as absent.
DATADIR_MARKER = '/var/lib/mysql/mysql'


class MySQLDriver(spawn.ClientMixin, dump.DumpMixin, load.LoadMixin,
                  verify.VerifyMixin, accounts.AccountsMixin,
                  schema.SchemaMixin, base.ServiceDriver):
    """MySQL/MariaDB databases, dumped with mysqldump while they serve."""

    name = 'mysql'

    def is_present(self) -> bool:
        """Whether mysqldump exists and there is a server to dump."""
        opts = self.conf.mysql
        if not shutil.which(opts.mysqldump_path):
            return False
        if (opts.socket or opts.host not in LOCAL_HOSTS or
                os.path.isdir(self.path(DATADIR_MARKER))):
            return True
        return any(proc.info['name'] in SERVER_PROCESSES
                   for proc in psutil.process_iter(['name']))

    def units(self) -> list[str]:
        """None: a dump can only be loaded into a running server."""
        return []

    def describe(self) -> dict:
        """The server's databases but internal schemas, or {} if it fails."""
        try:
            return {'databases': [db for db in self.list_databases()
                                  if db not in INTERNAL_SCHEMAS]}
        except Exception:
            return {}

    def membership(self) -> dict:
        """Heartbeat facts of the server's cluster: {'galera': ...} or {}."""
        return galera.membership(self._query, self.conf.state_path)

    def galera_state(self) -> galera.NodeState | None:
        """The server's wsrep state; None when it is not a Galera member."""
        return galera.read(self._query)

    def list_databases(self) -> list[str]:
        """Names of every database on the server."""
        return self._query('SHOW DATABASES')


# Names used by the other drivers and the tests, from before the split.
INTERNAL_SCHEMAS = dump.INTERNAL_SCHEMAS
_reraise = spawn._reraise
_Splitter = dumpfile._Splitter
_Sections = dumpfile._Sections
_ParallelLoad = load._ParallelLoad
_PositionalReader = load._PositionalReader
