"""The catalogue API: every read and write of osbackup's database.

All state changes of tasks are compare-and-set updates (``WHERE status IN
...``) so that several conductors, redelivered reports and the deadline
checker can race without a task changing state twice. Methods return plain
dicts, ready for RPC and JSON. The queries of each table live in a
mixin of their own: agent_api, backups_api, tasks_api, restores_api,
policy_api, records_api and status_api.
"""

import contextlib

from oslo_db import api as oslo_db_api
from oslo_db import exception as db_exc
import sqlalchemy as sa
from sqlalchemy import orm

from osbackup.db import agent_api
from osbackup.db import backups_api
from osbackup.db import binlog_api
from osbackup.db import engine
from osbackup.db import migration
from osbackup.db import models
from osbackup.db import policy_api
from osbackup.db import records_api
from osbackup.db import restores_api
from osbackup.db import rows
from osbackup.db import status_api
from osbackup.db import tasks_api
from osbackup import exception
from osbackup import states


_now = rows.now
_iso = rows.iso
_row = rows.row


class Catalogue(agent_api.AgentQueries, backups_api.BackupQueries,
                tasks_api.TaskQueries, restores_api.RestoreQueries,
                policy_api.PolicyQueries, records_api.RecordQueries,
                status_api.StatusQueries, binlog_api.BinlogQueries):
    """Access to the catalogue database named by ``[database] connection``."""

    def __init__(self, connection: str, **engine_kw):
        self.engine = engine.create(connection, **engine_kw)
        self._sessions = orm.sessionmaker(bind=self.engine,
                                          expire_on_commit=False)

    @classmethod
    def from_conf(cls, conf) -> 'Catalogue':
        return cls(conf.database.connection, **engine.options(conf))

    @contextlib.contextmanager
    def session(self):
        with self._sessions() as session, session.begin():
            yield session

    # -- schema --------------------------------------------------------

    def sync(self) -> str:
        return migration.upgrade(self.engine)

    def check_schema(self) -> None:
        """Raise a clear error when ``db sync`` has not been run."""
        current = migration.current(self.engine)
        if current != migration.head():
            raise exception.OsbackupError(
                'The catalogue schema is at version %s, this code needs %s: '
                'run "osbackup-manage db sync".'
                % (current or 'none', migration.head()))

    # -- agents ----------------------------------------------------------

    @oslo_db_api.wrap_db_retry(max_retries=5, retry_on_deadlock=True,
                               exception_checker=lambda exc: isinstance(
                                   exc, db_exc.DBDuplicateEntry))
    def record_heartbeat(self, host: str, version: str, info: dict) -> None:
        """Upsert the agent's row (retried: first heartbeats race)."""
        now = _now()
        with self.session() as s:
            updated = s.execute(
                sa.update(models.Agent).where(models.Agent.host == host)
                .values(version=version, info=info, last_heartbeat=now,
                        stopped_at=None)
            ).rowcount
            if not updated:
                s.add(models.Agent(host=host, version=version, info=info,
                                   created_at=now, last_heartbeat=now))
            # Tasks the agent holds (queued or running) are alive even
            # when they have no progress to report yet.
            held = [t for t in info.get('tasks', []) if isinstance(t, str)]
            if held:
                s.execute(sa.update(models.Task)
                          .where(models.Task.id.in_(held),
                                 models.Task.host == host,
                                 models.Task.status.in_(states.TASK_ACTIVE))
                          .values(status=states.RUNNING, updated_at=now))
