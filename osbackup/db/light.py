"""Read-only catalogue queries over the plain DB-API, for fast commands.

Importing SQLAlchemy, oslo.db and the models costs about 0.2 s, more than
``osbackup-manage agent list`` needs to answer. Commands that only read a
few rows ask this module first. It speaks SQLite (``sqlite:///path``) and
MariaDB/MySQL through PyMySQL (``mysql+pymysql://``), and returns the same
dicts as the full catalogue, from the same row helpers. Any other URL or
URL option, a schema that is not at the code's version, and any failure to
connect or to read give None: the caller then takes the full catalogue,
whose errors and retries are the ones operators already know.
"""

import datetime
import json
import os
import urllib.parse

from osbackup.db import agent_rows
from osbackup.db import migration
from osbackup.db import rows

#: Seconds to connect or read before the full catalogue is tried instead.
TIMEOUT = 5
_AGENT_COLUMNS = agent_rows.AGENT_FIELDS + ('skewed_at',)
_DATETIMES = frozenset(('last_heartbeat', 'stopped_at', 'skewed_at',
                        'first_at', 'last_at'))
_JSON = frozenset(('info',))
#: URL query options of a MySQL URL that this module honours.
_MYSQL_QUERY = frozenset(('charset', 'unix_socket'))


class _Row:
    """A fetched row with attribute access, values as the models give."""

    def __init__(self, names, values):
        for name, value in zip(names, values):
            if name in _DATETIMES and isinstance(value, str):
                # SQLite stores SQLAlchemy's DateTime as ISO text.
                value = datetime.datetime.fromisoformat(value)
            elif name in _JSON and isinstance(value, (str, bytes)):
                value = json.loads(value)
            setattr(self, name, value)


def connect(url: str, timeout: float = TIMEOUT):
    """A DB-API connection for ``url``, or None if this module can't."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == 'sqlite':
        path = url[len('sqlite:///'):] if url.startswith('sqlite:///') \
            else ''
        # A missing file would be created by sqlite3: the full catalogue
        # says what is wrong instead.
        if not path or parsed.query or not os.path.exists(path):
            return None
        import sqlite3
        return sqlite3.connect('file:%s?mode=ro' % urllib.parse.quote(path),
                               uri=True, timeout=timeout)
    if parsed.scheme == 'mysql+pymysql':
        query = urllib.parse.parse_qs(parsed.query)
        if set(query) - _MYSQL_QUERY:
            return None
        import pymysql
        unquote = urllib.parse.unquote
        kw = {'user': unquote(parsed.username or ''),
              'password': unquote(parsed.password or ''),
              'host': parsed.hostname or 'localhost',
              'port': parsed.port or 3306,
              'database': unquote(parsed.path.lstrip('/')),
              'charset': query.get('charset', ['utf8mb4'])[0],
              'connect_timeout': timeout, 'read_timeout': timeout,
              # Each read sees what is committed now: ``agent wait`` polls
              # on one connection, which a transaction would freeze.
              'autocommit': True}
        if 'unix_socket' in query:
            kw['unix_socket'] = query['unix_socket'][0]
        return pymysql.connect(**kw)
    return None


class LightCatalogue:
    """The read-only queries of ``agent list``, without SQLAlchemy."""

    def __init__(self, connection):
        self._connection = connection

    @classmethod
    def open(cls, connection_url: str) -> 'LightCatalogue | None':
        """The light catalogue at its schema's version, else None."""
        try:
            connection = connect(connection_url)
        except Exception:
            return None
        if connection is None:
            return None
        catalogue = cls(connection)
        try:
            current = catalogue._fetch('SELECT version_num FROM '
                                       'alembic_version')
        except Exception:
            current = []
        if [tuple(r) for r in current] != [(migration.head(),)]:
            catalogue.close()
            return None
        return catalogue

    def _fetch(self, sql: str) -> list:
        cursor = self._connection.cursor()
        try:
            cursor.execute(sql)
            return cursor.fetchall()
        finally:
            cursor.close()

    def _rows(self, table: str, columns, order: str) -> list:
        return [_Row(columns, values) for values in self._fetch(
            'SELECT %s FROM %s ORDER BY %s' % (', '.join(columns), table,
                                               order))]

    def list_agents(self, down_after: int) -> list[dict]:
        """As ``Catalogue.list_agents``."""
        now = rows.now()
        out = []
        for row in self._rows('agents', _AGENT_COLUMNS, 'host'):
            agent = rows.row(row, *agent_rows.AGENT_FIELDS)
            agent['state'] = agent_rows.state(row, now, down_after)
            out.append(agent)
        return out

    def list_rejections(self, within: int) -> list[dict]:
        """As ``Catalogue.list_rejections``."""
        since = rows.now() - datetime.timedelta(seconds=within)
        # The table is bounded (agent_api.MAX_REJECTIONS): filter here.
        found = [r for r in self._rows('agent_rejections',
                                       agent_rows.REJECTION_FIELDS,
                                       'last_at DESC')
                 if r.last_at >= since]
        return [rows.row(r, *agent_rows.REJECTION_FIELDS) for r in found]

    def close(self) -> None:
        self._connection.close()
