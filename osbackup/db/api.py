"""The catalogue API: every read and write of osbackup's database.

All state changes of tasks are compare-and-set updates (``WHERE status IN
...``) so that several conductors, redelivered reports and the deadline
checker can race without a task changing state twice. Methods return plain
dicts, ready for RPC and JSON.
"""

import contextlib
import datetime
import uuid

from oslo_db import api as oslo_db_api
from oslo_db import exception as db_exc
from oslo_db.sqlalchemy import engines
import sqlalchemy as sa
from sqlalchemy import orm

from osbackup.db import migration
from osbackup.db import models
from osbackup.db import policy_api
from osbackup.db import rows
from osbackup import exception
from osbackup import states


_now = rows.now
_iso = rows.iso
_row = rows.row


# Reports from many agents update neighbouring index entries at once;
# InnoDB then picks deadlock victims, whose whole transaction is safe to
# run again (every update is compare-and-set).
_retry_deadlock = oslo_db_api.wrap_db_retry(max_retries=5,
                                            retry_on_deadlock=True)

_TASK_FIELDS = ('id', 'backup_id', 'restore_id', 'verification_id', 'kind',
                'host', 'service',
                'params', 'status', 'created_at', 'updated_at', 'started_at',
                'finished_at', 'expires_at', 'progress_bytes',
                'progress_files', 'result', 'error')
_ARTIFACT_FIELDS = ('id', 'backup_id', 'task_id', 'host', 'service', 'name',
                    'kind', 'status', 'location', 'size', 'sha256', 'meta',
                    'created_at')
_BACKUP_FIELDS = ('id', 'status', 'hosts', 'services', 'policy', 'targets',
                  'verified', 'created_at', 'finished_at', 'error')
_RESTORE_FIELDS = ('id', 'backup_id', 'status', 'hosts', 'services', 'plan',
                   'phase', 'created_at', 'finished_at', 'error')


class Catalogue(policy_api.PolicyQueries):
    """Access to the catalogue database named by ``[database] connection``."""

    def __init__(self, connection: str, **engine_kw):
        self.engine = engines.create_engine(connection, **engine_kw)
        self._sessions = orm.sessionmaker(bind=self.engine,
                                          expire_on_commit=False)

    @classmethod
    def from_conf(cls, conf) -> 'Catalogue':
        db = conf.database
        return cls(db.connection, max_retries=db.max_retries,
                   retry_interval=db.retry_interval,
                   max_pool_size=db.max_pool_size,
                   max_overflow=db.max_overflow,
                   pool_timeout=db.pool_timeout)

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
                .values(version=version, info=info, last_heartbeat=now)
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

    def list_agents(self, down_after: int) -> list[dict]:
        now = _now()
        with self.session() as s:
            rows = s.scalars(sa.select(models.Agent)
                             .order_by(models.Agent.host)).all()
            out = []
            for row in rows:
                age = (now - row.last_heartbeat).total_seconds()
                agent = _row(row, 'host', 'version', 'info',
                             'last_heartbeat')
                agent['state'] = states.UP if age <= down_after \
                    else states.DOWN
                out.append(agent)
            return out

    # -- backups ---------------------------------------------------------

    def create_backup(self, hosts, services, policy=None,
                      targets=None) -> dict:
        with self.session() as s:
            backup = models.Backup(status=states.RUNNING, hosts=list(hosts),
                                   services=list(services), policy=policy,
                                   targets=list(targets or []),
                                   created_at=_now())
            s.add(backup)
            s.flush()
            return _row(backup, *_BACKUP_FIELDS)

    def get_backup(self, backup_id: int) -> dict:
        with self.session() as s:
            backup = s.get(models.Backup, backup_id)
            if backup is None:
                raise exception.NotFound('Backup %s not found' % backup_id)
            out = _row(backup, *_BACKUP_FIELDS)
            tasks = s.scalars(sa.select(models.Task)
                              .where(models.Task.backup_id == backup_id)
                              .order_by(models.Task.host,
                                        models.Task.service)).all()
            arts = s.scalars(sa.select(models.Artifact)
                             .where(models.Artifact.backup_id == backup_id)
                             .order_by(models.Artifact.host,
                                       models.Artifact.service,
                                       models.Artifact.name)).all()
            out['tasks'] = [_row(t, *_TASK_FIELDS) for t in tasks]
            out['artifacts'] = [_row(a, *_ARTIFACT_FIELDS) for a in arts]
            copies = self._copies(s, [a['id'] for a in out['artifacts']])
            for art in out['artifacts']:
                art['copies'] = copies.get(art['id'], [])
            return out

    def _copies(self, s, artifact_ids):
        found = {}
        if not artifact_ids:
            return found
        rows = s.scalars(sa.select(models.ArtifactCopy).where(
            models.ArtifactCopy.artifact_id.in_(artifact_ids))
            .order_by(models.ArtifactCopy.id)).all()
        for c in rows:
            found.setdefault(c.artifact_id, []).append(_row(
                c, 'target', 'location', 'size', 'sha256', 'status'))
        return found

    def list_backups(self, limit: int | None = None) -> list[dict]:
        with self.session() as s:
            query = sa.select(models.Backup).order_by(models.Backup.id.desc())
            if limit:
                query = query.limit(limit)
            backups = s.scalars(query).all()
            sizes = dict(s.execute(
                sa.select(models.Artifact.backup_id,
                          sa.func.sum(models.Artifact.size))
                .where(models.Artifact.status == states.AVAILABLE)
                .group_by(models.Artifact.backup_id)).all())
            counts = dict(s.execute(
                sa.select(models.Artifact.backup_id, sa.func.count())
                .where(models.Artifact.status == states.AVAILABLE)
                .group_by(models.Artifact.backup_id)).all())
            out = []
            for b in backups:
                row = _row(b, *_BACKUP_FIELDS)
                row['size'] = int(sizes.get(b.id) or 0)
                row['artifact_count'] = int(counts.get(b.id) or 0)
                out.append(row)
            return out

    def finish_backup_if_done(self, backup_id: int) -> str | None:
        """Close a backup whose tasks all ended; return its final status."""
        with self.session() as s:
            # Counted by the database (index on backup_id, kind, status):
            # this runs once per report, so it must not load every task.
            counts = dict(s.execute(
                sa.select(models.Task.status, sa.func.count())
                .where(models.Task.backup_id == backup_id,
                       models.Task.kind == 'backup')
                .group_by(models.Task.status)).all())
            if any(counts.get(st) for st in states.TASK_ACTIVE):
                return None
            total = sum(counts.values())
            bad = total - sum(counts.get(st, 0) for st in states.TASK_GOOD)
            status = states.SUCCEEDED if not bad else states.FAILED
            error = '%d of %d tasks did not succeed' % (bad, total) \
                if bad else None
            done = s.execute(
                sa.update(models.Backup)
                .where(models.Backup.id == backup_id,
                       models.Backup.status == states.RUNNING)
                .values(status=status, finished_at=_now(), error=error)
            ).rowcount
            return status if done else None

    def fail_backup(self, backup_id: int, error: str) -> None:
        with self.session() as s:
            s.execute(sa.update(models.Backup)
                      .where(models.Backup.id == backup_id,
                             models.Backup.status == states.RUNNING)
                      .values(status=states.FAILED, finished_at=_now(),
                              error=error))

    # -- tasks -----------------------------------------------------------

    def create_task(self, kind, host, service, params, timeout,
                    backup_id=None, restore_id=None, verification_id=None,
                    deliver_within: int = 120) -> dict:
        """Create one PENDING task; see create_tasks."""
        return self.create_tasks([dict(
            kind=kind, host=host, service=service, params=params,
            backup_id=backup_id, restore_id=restore_id,
            verification_id=verification_id)], timeout, deliver_within)[0]

    def create_tasks(self, specs: list, timeout: int,
                     deliver_within: int = 120) -> list[dict]:
        """Create PENDING tasks in one transaction.

        Every task of a wave exists before the first is cast, so a fast
        report can never close an operation that still has tasks to come.
        Each returned dict carries ``deliver_by``: the agent must receive
        the task before then or refuse it, because casts never expire and
        a task that waited in a dead agent's queue must not run late.
        """
        now = _now()
        deliver_by = _iso(now + datetime.timedelta(seconds=deliver_within))
        out = []
        with self.session() as s:
            for spec in specs:
                task = models.Task(
                    id=str(uuid.uuid4()), kind=spec['kind'],
                    host=spec['host'], service=spec['service'],
                    params=spec.get('params') or {}, status=states.PENDING,
                    created_at=now, updated_at=now,
                    backup_id=spec.get('backup_id'),
                    restore_id=spec.get('restore_id'),
                    verification_id=spec.get('verification_id'),
                    expires_at=now + datetime.timedelta(seconds=timeout),
                    progress_bytes=0, progress_files=0)
                s.add(task)
                out.append(task)
            s.flush()
            rows_out = [_row(t, *_TASK_FIELDS) for t in out]
        for row in rows_out:
            row['deliver_by'] = deliver_by
        return rows_out

    def get_task(self, task_id: str) -> dict:
        with self.session() as s:
            task = s.get(models.Task, task_id)
            if task is None:
                raise exception.NotFound('Task %s not found' % task_id)
            return _row(task, *_TASK_FIELDS)

    @_retry_deadlock
    def task_started(self, task_id: str) -> bool:
        now = _now()
        with self.session() as s:
            return bool(s.execute(
                sa.update(models.Task)
                .where(models.Task.id == task_id,
                       models.Task.status == states.PENDING)
                .values(status=states.RUNNING, started_at=now,
                        updated_at=now)).rowcount)

    @_retry_deadlock
    def task_progress(self, task_id: str, nbytes: int, nfiles: int) -> bool:
        with self.session() as s:
            return bool(s.execute(
                sa.update(models.Task)
                .where(models.Task.id == task_id,
                       models.Task.status.in_(states.TASK_ACTIVE))
                .values(status=states.RUNNING, progress_bytes=nbytes,
                        progress_files=nfiles, updated_at=_now())).rowcount)

    @_retry_deadlock
    def task_finished(self, task_id: str, status: str, result: dict,
                      error: str | None = None) -> dict | None:
        """Record a task's end and its artifacts, once.

        Returns the task, or None when the task had already ended (a
        duplicate or late report, which must change nothing).
        """
        now = _now()
        with self.session() as s:
            values = dict(status=status, result=result, error=error,
                          finished_at=now, updated_at=now)
            if result and 'bytes' in result:
                values.update(progress_bytes=result['bytes'],
                              progress_files=result.get('files', 0))
            done = s.execute(
                sa.update(models.Task)
                .where(models.Task.id == task_id,
                       models.Task.status.in_(states.TASK_ACTIVE))
                .values(**values)).rowcount
            if not done:
                return None
            task = s.get(models.Task, task_id)
            if task.backup_id is not None and task.kind == 'backup':
                self._add_artifacts(s, task, status, result or {}, now)
            return _row(task, *_TASK_FIELDS)

    def _add_artifacts(self, s, task, status, result, now):
        if status == states.SKIPPED:
            s.add(models.Artifact(
                backup_id=task.backup_id, task_id=task.id, host=task.host,
                service=task.service, name=task.service, kind='none',
                status=states.ARTIFACT_SKIPPED, meta={'reason': result.get(
                    'reason', 'service not present on this host')},
                created_at=now))
            return
        if status != states.SUCCEEDED:
            return
        for art in result.get('artifacts', []):
            row = models.Artifact(
                backup_id=task.backup_id, task_id=task.id, host=task.host,
                service=task.service, name=art['name'], kind=art['kind'],
                status=states.AVAILABLE, location=art['location'],
                size=art['size'], sha256=art['sha256'],
                meta=art.get('meta') or {}, created_at=now)
            s.add(row)
            s.flush()
            for copy in art.get('copies', []):
                s.add(models.ArtifactCopy(
                    artifact_id=row.id, target=copy['target'],
                    location=copy['location'], size=copy.get('size'),
                    sha256=copy.get('sha256'), status=states.AVAILABLE,
                    created_at=now))

    def expire_tasks(self, start_timeout: int, silence_timeout: int
                     ) -> list[dict]:
        """Mark tasks whose agent went silent TIMED_OUT; return them."""
        now = _now()
        not_started = now - datetime.timedelta(seconds=start_timeout)
        silent = now - datetime.timedelta(seconds=silence_timeout)
        expired = []
        with self.session() as s:
            candidates = s.scalars(sa.select(models.Task).where(
                models.Task.status.in_(states.TASK_ACTIVE),
                sa.or_(
                    sa.and_(models.Task.status == states.PENDING,
                            models.Task.created_at < not_started),
                    sa.and_(models.Task.status == states.RUNNING,
                            models.Task.updated_at < silent),
                    models.Task.expires_at < now))).all()
            for task in candidates:
                if task.status == states.PENDING:
                    why = ('agent %s did not start the task within %d s'
                           % (task.host, start_timeout))
                else:
                    why = ('agent %s went silent for more than %d s'
                           % (task.host, silence_timeout))
                if task.expires_at < now:
                    why = 'task passed its deadline'
                done = s.execute(
                    sa.update(models.Task)
                    .where(models.Task.id == task.id,
                           models.Task.status == task.status)
                    .values(status=states.TIMED_OUT, error=why,
                            finished_at=now, updated_at=now)).rowcount
                if done:
                    expired.append({'id': task.id,
                                    'backup_id': task.backup_id,
                                    'restore_id': task.restore_id,
                                    'verification_id': task.verification_id,
                                    'host': task.host, 'error': why})
        return expired

    def running_backups(self) -> list[int]:
        with self.session() as s:
            return list(s.scalars(sa.select(models.Backup.id).where(
                models.Backup.status == states.RUNNING)).all())

    # -- restores --------------------------------------------------------

    def create_restore(self, backup_id, hosts, services, plan) -> dict:
        with self.session() as s:
            restore = models.Restore(
                backup_id=backup_id, status=states.RUNNING,
                hosts=list(hosts), services=list(services), plan=plan,
                phase=0, created_at=_now())
            s.add(restore)
            s.flush()
            return _row(restore, *_RESTORE_FIELDS)

    def get_restore(self, restore_id: int) -> dict:
        with self.session() as s:
            restore = s.get(models.Restore, restore_id)
            if restore is None:
                raise exception.NotFound('Restore %s not found' % restore_id)
            out = _row(restore, *_RESTORE_FIELDS)
            steps = s.scalars(sa.select(models.RestoreStep)
                              .where(models.RestoreStep.restore_id ==
                                     restore_id)
                              .order_by(models.RestoreStep.seq,
                                        models.RestoreStep.id)).all()
            out['steps'] = [_row(st, 'seq', 'phase', 'host', 'action',
                                 'target', 'status', 'error', 'at')
                            for st in steps]
            tasks = s.scalars(sa.select(models.Task)
                              .where(models.Task.restore_id == restore_id)
                              .order_by(models.Task.created_at)).all()
            out['tasks'] = [_row(t, *_TASK_FIELDS) for t in tasks]
            return out

    def list_restores(self, limit: int | None = None) -> list[dict]:
        with self.session() as s:
            query = sa.select(models.Restore).order_by(
                models.Restore.id.desc())
            if limit:
                query = query.limit(limit)
            return [_row(r, *_RESTORE_FIELDS) for r in s.scalars(query)]

    def move_restore_phase(self, restore_id: int, from_phase: int,
                           to_phase: int) -> bool:
        """Compare-and-set the phase, so one conductor advances it."""
        with self.session() as s:
            return bool(s.execute(
                sa.update(models.Restore)
                .where(models.Restore.id == restore_id,
                       models.Restore.phase == from_phase,
                       models.Restore.status == states.RUNNING)
                .values(phase=to_phase)).rowcount)

    def set_restore_error(self, restore_id: int, error: str) -> None:
        with self.session() as s:
            s.execute(sa.update(models.Restore)
                      .where(models.Restore.id == restore_id,
                             models.Restore.error.is_(None))
                      .values(error=error))

    def finish_restore(self, restore_id: int, status: str) -> bool:
        with self.session() as s:
            return bool(s.execute(
                sa.update(models.Restore)
                .where(models.Restore.id == restore_id,
                       models.Restore.status == states.RUNNING)
                .values(status=status, finished_at=_now())).rowcount)

    def add_restore_steps(self, restore_id: int, phase: str,
                          steps: list) -> None:
        now = _now()
        with self.session() as s:
            seq = s.scalar(sa.select(sa.func.count())
                           .select_from(models.RestoreStep)
                           .where(models.RestoreStep.restore_id ==
                                  restore_id))
            for n, step in enumerate(steps):
                s.add(models.RestoreStep(
                    restore_id=restore_id, seq=seq + n, phase=phase,
                    host=step['host'], action=step['action'],
                    target=step['target'], status=step['status'],
                    error=step.get('error'), at=now))

    def restore_phase_tasks(self, restore_id: int, kind: str) -> list[dict]:
        with self.session() as s:
            tasks = s.scalars(sa.select(models.Task).where(
                models.Task.restore_id == restore_id,
                models.Task.kind == kind)).all()
            return [_row(t, *_TASK_FIELDS) for t in tasks]

    def running_restores(self) -> list[int]:
        with self.session() as s:
            return list(s.scalars(sa.select(models.Restore.id).where(
                models.Restore.status == states.RUNNING)).all())
