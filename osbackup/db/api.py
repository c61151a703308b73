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
import sqlalchemy as sa
from sqlalchemy import orm

from osbackup.db import agent_api
from osbackup.db import engine
from osbackup.db import migration
from osbackup.db import models
from osbackup.db import policy_api
from osbackup.db import records_api
from osbackup.db import rows
from osbackup.db import status_api
from osbackup import exception
from osbackup import states


_now = rows.now
_iso = rows.iso
_row = rows.row


# Reports from many agents update neighbouring index entries at once;
# InnoDB then picks deadlock victims, whose whole transaction is safe to
# run again (every update is compare-and-set). On a Galera cluster, two
# conductors writing the same rows through different members lose one
# transaction to certification, reported as the same error 1213: every
# write of the catalogue is retried the same way.
_retry_deadlock = oslo_db_api.wrap_db_retry(max_retries=5,
                                            retry_on_deadlock=True)

_TASK_FIELDS = ('id', 'backup_id', 'restore_id', 'verification_id', 'kind',
                'host', 'service',
                'params', 'status', 'created_at', 'updated_at', 'started_at',
                'finished_at', 'expires_at', 'progress_bytes',
                'progress_files', 'result', 'error')
_ARTIFACT_FIELDS = ('id', 'backup_id', 'task_id', 'host', 'service', 'name',
                    'kind', 'status', 'location', 'size', 'sha256', 'meta',
                    'created_at', 'parent_id')
#: What Catalogue.record_reports reads and returns of each task.
_LOCKED_FIELDS = ('id', 'backup_id', 'restore_id', 'verification_id',
                  'kind', 'host', 'service', 'params', 'status',
                  'progress_bytes', 'progress_files', 'started_at')
_ENDED_FIELDS = _LOCKED_FIELDS + ('result', 'error', 'finished_at')
_BACKUP_FIELDS = ('id', 'uuid', 'status', 'hosts', 'services', 'policy',
                  'targets',
                  'verified', 'created_at', 'finished_at', 'error')
_RESTORE_FIELDS = ('id', 'backup_id', 'status', 'hosts', 'services', 'plan',
                   'phase', 'created_at', 'finished_at', 'error')


def _late_success(kind: str, status: str, reported: str) -> bool:
    """A backup task timed out, then its agent reports it succeeded.

    Its artifacts are complete and stored: they are recorded (and the
    backup judged again) rather than left in storage unknown to the
    catalogue. Any other late report changes nothing.
    """
    return (kind == 'backup' and status == states.TIMED_OUT and
            reported == states.SUCCEEDED)


def _insert_tasks(s, specs, timeout, deliver_within) -> list[dict]:
    """Insert PENDING tasks in session ``s``; see Catalogue.create_tasks."""
    now = _now()
    deliver_by = _iso(now + datetime.timedelta(seconds=deliver_within))
    expires_at = now + datetime.timedelta(seconds=timeout)
    values = [dict(
        id=str(uuid.uuid4()), kind=spec['kind'], host=spec['host'],
        service=spec['service'], params=spec.get('params') or {},
        status=states.PENDING, created_at=now, updated_at=now,
        started_at=None, finished_at=None,
        backup_id=spec.get('backup_id'),
        restore_id=spec.get('restore_id'),
        verification_id=spec.get('verification_id'),
        expires_at=expires_at, progress_bytes=0, progress_files=0,
        result=None, error=None) for spec in specs]
    if values:
        # One multi-row INSERT (executemany), not one ORM object and
        # statement per task: a wave can hold thousands.
        s.execute(sa.insert(models.Task.__table__), values)
    rows_out = []
    for value in values:
        row = {f: _iso(value.get(f)) if isinstance(
            value.get(f), datetime.datetime) else value.get(f)
            for f in _TASK_FIELDS}
        row['deliver_by'] = deliver_by
        rows_out.append(row)
    return rows_out


def _held(info) -> list:
    """The task ids a heartbeat says its agent holds."""
    tasks = info.get('tasks', []) if isinstance(info, dict) else []
    return [t for t in tasks if isinstance(t, str)]


class Catalogue(agent_api.AgentQueries, policy_api.PolicyQueries,
                records_api.RecordQueries, status_api.StatusQueries):
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

    # -- backups ---------------------------------------------------------

    @_retry_deadlock
    def create_backup(self, hosts, services, policy=None,
                      targets=None) -> dict:
        with self.session() as s:
            backup = models.Backup(uuid=str(uuid.uuid4()),
                                   status=states.RUNNING, hosts=list(hosts),
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
            # Plain rows, not ORM objects: a backup can hold thousands.
            task_t, art_t = models.Task.__table__, models.Artifact.__table__
            tasks = s.execute(sa.select(task_t)
                              .where(task_t.c.backup_id == backup_id)
                              .order_by(task_t.c.host,
                                        task_t.c.service)).all()
            arts = s.execute(sa.select(art_t)
                             .where(art_t.c.backup_id == backup_id)
                             .order_by(art_t.c.host, art_t.c.service,
                                       art_t.c.name)).all()
            out['tasks'] = [_row(t, *_TASK_FIELDS) for t in tasks]
            out['artifacts'] = [_row(a, *_ARTIFACT_FIELDS) for a in arts]
            copies = self._copies(s, [a['id'] for a in out['artifacts']])
            for art in out['artifacts']:
                art['copies'] = copies.get(art['id'], [])
            return out

    def get_backup_summary(self, backup_id: int) -> dict:
        """The backup's own fields, without its tasks and artifacts."""
        with self.session() as s:
            backup = s.get(models.Backup, backup_id)
            if backup is None:
                raise exception.NotFound('Backup %s not found' % backup_id)
            return _row(backup, *_BACKUP_FIELDS)

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
        return self._judge_backup(backup_id, states.RUNNING,
                                  finished_at=_now())

    def rejudge_backup(self, backup_id: int) -> str | None:
        """Judge a FAILED backup again after a late task success.

        Returns SUCCEEDED when its tasks now all are good, else None.
        Only a FAILED backup moves: one being deleted stays so (its
        deletion takes the late artifacts too).
        """
        status = self._judge_backup(backup_id, states.FAILED)
        return status if status == states.SUCCEEDED else None

    @_retry_deadlock
    def _judge_backup(self, backup_id, from_status, **values):
        """Set a backup's status from its tasks', compare-and-set.

        Returns the status set, or None while a task is active or when the
        backup was not ``from_status``.
        """
        with self.session() as s:
            verdict = self._verdict(s, backup_id)
            if verdict is None:
                return None
            status, error = verdict
            done = s.execute(
                sa.update(models.Backup)
                .where(models.Backup.id == backup_id,
                       models.Backup.status == from_status)
                .values(status=status, error=error, **values)).rowcount
            return status if done else None

    @staticmethod
    def _verdict(s, backup_id):
        """(status, error) of a backup from its tasks; None while active."""
        # One active task is enough to answer; the index on (backup_id,
        # kind, status) finds it without reading the ended ones.
        active = s.scalar(
            sa.select(models.Task.id)
            .where(models.Task.backup_id == backup_id,
                   models.Task.kind == 'backup',
                   models.Task.status.in_(states.TASK_ACTIVE)).limit(1))
        if active is not None:
            return None
        counts = dict(s.execute(
            sa.select(models.Task.status, sa.func.count())
            .where(models.Task.backup_id == backup_id,
                   models.Task.kind == 'backup')
            .group_by(models.Task.status)).all())
        if any(counts.get(st) for st in states.TASK_ACTIVE):
            return None
        total = sum(counts.values())
        bad = total - sum(counts.get(st, 0) for st in states.TASK_GOOD)
        if not bad:
            return states.SUCCEEDED, None
        return states.FAILED, '%d of %d tasks did not succeed' % (bad, total)

    @_retry_deadlock
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

    @_retry_deadlock
    def create_tasks(self, specs: list, timeout: int,
                     deliver_within: int = 120) -> list[dict]:
        """Create PENDING tasks in one transaction.

        Every task of a wave exists before the first is cast, so a fast
        report can never close an operation that still has tasks to come.
        Each returned dict carries ``deliver_by``: the agent must receive
        the task before then or refuse it, because casts never expire and
        a task that waited in a dead agent's queue must not run late.
        """
        if not specs:
            return []
        with self.session() as s:
            return _insert_tasks(s, specs, timeout, deliver_within)

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
        duplicate or late report, which must change nothing) except for
        a late success (see _late_success): then ``late`` is True.
        """
        now = _now()
        with self.session() as s:
            values = dict(status=status, result=result, error=error,
                          finished_at=now, updated_at=now,
                          started_at=sa.func.coalesce(
                              models.Task.started_at, now))
            if result and 'bytes' in result:
                values.update(progress_bytes=result['bytes'],
                              progress_files=result.get('files', 0))
            current = s.execute(
                sa.select(models.Task.kind, models.Task.status)
                .where(models.Task.id == task_id)).first()
            late = current is not None and _late_success(
                current.kind, current.status, status)
            done = s.execute(
                sa.update(models.Task)
                .where(models.Task.id == task_id,
                       models.Task.status == states.TIMED_OUT if late else
                       models.Task.status.in_(states.TASK_ACTIVE))
                .values(**values)).rowcount
            if not done:
                return None
            task = s.get(models.Task, task_id)
            if task.backup_id is not None and task.kind == 'backup':
                self._add_artifacts(s, task, status, result or {}, now)
            return dict(_row(task, *_TASK_FIELDS), late=late)

    @_retry_deadlock
    def record_reports(self, reports: list) -> list[dict]:
        """Apply a batch of agents' task reports in one transaction.

        ``reports`` are ``(kind, task_id, args)`` in arrival order:
        ``started`` (args ignored), ``progress`` (``(nbytes, nfiles)``) or
        ``finished`` (``(status, result, error)``), each with the rules of
        task_started, task_progress and task_finished; ``(heartbeat, host,
        (version, info[, clock_offset]))`` with those of record_heartbeat;
        ``(goodbye, host, None)`` (a clean stop) and ``(skewed, host,
        (version, info, clock_offset))`` (a heartbeat refused for its
        time), see agent_api.py. The tasks'
        rows are locked first, so a task ends once whoever else reports or
        expires it. All or nothing: a batch that fails changes nothing and
        can be applied again. Returns the tasks this batch ended, with the
        fields that route them (``_ENDED_FIELDS``) and ``late`` (a timed
        out backup task that succeeded after all, see _late_success).
        """
        now = _now()
        ids, beats, goodbyes, skews = set(), {}, set(), {}
        for kind, key, args in reports:
            if kind == 'heartbeat':
                beats[key] = args       # the newest of a host wins
                goodbyes.discard(key)   # started again since
                ids.update(_held(args[1]))
            elif kind == 'goodbye':
                goodbyes.add(key)
            elif kind == 'skewed':
                skews[key] = args
            elif isinstance(key, str):
                ids.add(key)
        table = models.Task.__table__
        with self.session() as s:
            if beats:
                self._record_beats(s, beats, now)
            self._record_skews(s, skews, now)
            self._record_goodbyes(s, goodbyes, now)
            # Plain rows of the columns needed, not ORM objects: a batch
            # can hold thousands.
            found = {row.id: row for row in s.execute(
                sa.select(*[table.c[f] for f in _LOCKED_FIELDS])
                .where(table.c.id.in_(sorted(ids))).with_for_update())
            } if ids else {}
            changes, ended, late = {}, [], set()
            for kind, task_id, args in reports:
                if kind == 'heartbeat':
                    # Tasks the agent holds (queued or running) are alive
                    # even when they have no progress to report yet.
                    for held in _held(args[1]):
                        row = found.get(held)
                        if row is None or row.host != task_id:
                            continue
                        values = changes.setdefault(held, {})
                        if values.get('status', row.status) in \
                                states.TASK_ACTIVE:
                            values.update(status=states.RUNNING,
                                          updated_at=now)
                    continue
                if kind in ('goodbye', 'skewed'):
                    continue
                row = found.get(task_id)
                if row is None:
                    continue
                values = changes.setdefault(task_id, {})
                status = values.get('status', row.status)
                if kind == 'finished' and _late_success(row.kind, status,
                                                        args[0]):
                    late.add(task_id)
                elif status not in states.TASK_ACTIVE:
                    continue    # a late or repeated report
                if kind == 'started':
                    if status == states.PENDING:
                        values.update(status=states.RUNNING, started_at=now,
                                      updated_at=now)
                elif kind == 'progress':
                    values.update(status=states.RUNNING,
                                  progress_bytes=args[0],
                                  progress_files=args[1], updated_at=now)
                elif kind == 'finished':
                    status, result, error = args
                    values.update(status=status, result=result, error=error,
                                  finished_at=now, updated_at=now)
                    if row.started_at is None:
                        # A quick task sends no start report.
                        values.setdefault('started_at', now)
                    if result and 'bytes' in result:
                        values.update(progress_bytes=result['bytes'],
                                      progress_files=result.get('files', 0))
                    ended.append(task_id)
            self._update_rows(s, table.c.id, changes)
            out, artifacts = [], []
            for task_id in ended:
                row = found[task_id]
                task = dict(row._mapping, **changes[task_id])
                if task['backup_id'] is not None and task['kind'] == 'backup':
                    self._add_artifacts(s, row, task['status'],
                                        task['result'] or {}, now,
                                        pending=artifacts)
                out.append(dict({f: _iso(task.get(f)) if isinstance(
                    task.get(f), datetime.datetime) else task.get(f)
                    for f in _ENDED_FIELDS}, late=task_id in late))
            if artifacts:
                s.execute(sa.insert(models.Artifact.__table__), artifacts)
            s.flush()
            return out

    def _record_beats(self, s, beats, now):
        """Upsert the agents of {host: (version, info[, clock offset])}."""
        agents = models.Agent.__table__
        beats = {host: tuple(args) + (None,) * (3 - len(args))
                 for host, args in beats.items()}
        known = set(s.scalars(sa.select(agents.c.host).where(
            agents.c.host.in_(sorted(beats)))))
        new = [dict(host=host, version=version, info=info, created_at=now,
                    last_heartbeat=now, clock_offset=offset)
               for host, (version, info, offset) in beats.items()
               if host not in known]
        if new:
            # Another conductor inserting the same host first makes this
            # a DBDuplicateEntry: the batch is retried, then updates it.
            s.execute(sa.insert(agents), new)
        self._update_rows(s, agents.c.host, {
            host: dict(version=version, info=info, last_heartbeat=now,
                       stopped_at=None, clock_offset=offset)
            for host, (version, info, offset) in beats.items()
            if host in known})

    @staticmethod
    def _update_rows(s, key, changes, chunk=100):
        """Write {key: {column: value}}: one UPDATE per chunk of rows.

        A column whose value differs between rows is set through a CASE
        on the key; one statement per chunk instead of one per row, the
        round trips to the database are what the recorder waits for.
        """
        table = key.table
        groups = {}
        for task_id, values in changes.items():
            if values:
                groups.setdefault(tuple(sorted(values)), []).append(
                    (task_id, values))
        for columns, rows_ in groups.items():
            for i in range(0, len(rows_), chunk):
                part = rows_[i:i + chunk]
                sets = {}
                for column in columns:
                    first = part[0][1][column]
                    if all(v[column] == first for _, v in part):
                        sets[column] = sa.literal(
                            first, type_=table.c[column].type)
                        continue
                    sets[column] = sa.case(
                        *[(key == row_key, sa.literal(
                            v[column], type_=table.c[column].type))
                          for row_key, v in part],
                        else_=table.c[column])
                # Never the same statement twice: not worth caching.
                s.execute(sa.update(table)
                          .where(key.in_([k for k, _ in part]))
                          .values(sets),
                          execution_options={'compiled_cache': None})

    def _add_artifacts(self, s, task, status, result, now, pending=None):
        """Record a task's artifacts.

        With ``pending`` (a list), artifacts without copies are appended
        to it as rows for the caller's one multi-row INSERT.
        """
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
        base = (task.params or {}).get('base') or {}
        for art in result.get('artifacts', []):
            meta = art.get('meta') or {}
            # The base is the one this conductor named, never the agent's.
            parent = (base.get('artifact_id')
                      if meta.get('level') == 'incremental' else None)
            values = dict(
                backup_id=task.backup_id, task_id=task.id, host=task.host,
                service=task.service, name=art['name'], kind=art['kind'],
                status=states.AVAILABLE, location=art['location'],
                size=art['size'], sha256=art['sha256'],
                meta=meta, created_at=now, parent_id=parent)
            if pending is not None and not art.get('copies'):
                pending.append(values)
                continue
            row = models.Artifact(**values)
            s.add(row)
            if art.get('copies'):
                # The copies need the artifact's id.
                s.flush()
            for copy in art.get('copies', []):
                s.add(models.ArtifactCopy(
                    artifact_id=row.id, target=copy['target'],
                    location=copy['location'], size=copy.get('size'),
                    sha256=copy.get('sha256'), status=states.AVAILABLE,
                    created_at=now))

    @_retry_deadlock
    def expire_tasks(self, start_timeout: int, silence_timeout: int,
                     until: datetime.datetime | None = None,
                     heard=None) -> list[dict]:
        """Mark tasks whose agent went silent TIMED_OUT; return them.

        ``heard(since)`` gives the seconds the conductor could hear its
        agents from ``since`` to ``until`` (conductor/hearing.py): a
        deadline counts only that time, so an outage of the broker or of
        the conductor pauses every deadline. Without it, wall-clock time
        up to now counts.
        """
        now = _now()
        until = until or now
        if heard is None:
            def heard(since):
                return (until - since).total_seconds()
        not_started = until - datetime.timedelta(seconds=start_timeout)
        silent = until - datetime.timedelta(seconds=silence_timeout)
        expired = []
        with self.session() as s:
            # Heard time never exceeds wall-clock time: these are the
            # tasks that may be late, the checks below say which are.
            candidates = s.scalars(sa.select(models.Task).where(
                models.Task.status.in_(states.TASK_ACTIVE),
                sa.or_(
                    sa.and_(models.Task.status == states.PENDING,
                            models.Task.created_at < not_started),
                    sa.and_(models.Task.status == states.RUNNING,
                            models.Task.updated_at < silent),
                    models.Task.expires_at < until))).all()
            for task in candidates:
                why = self._overdue(task, start_timeout, silence_timeout,
                                    heard)
                if why is None:
                    continue
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

    @staticmethod
    def _overdue(task, start_timeout, silence_timeout, heard) -> str | None:
        """Why ``task`` is past a deadline in heard time, or None."""
        allowed = (task.expires_at - task.created_at).total_seconds()
        if heard(task.created_at) > allowed:
            return 'task passed its deadline'
        if task.status == states.PENDING:
            if heard(task.created_at) > start_timeout:
                return ('agent %s did not start the task within %d s'
                        % (task.host, start_timeout))
        elif heard(task.updated_at) > silence_timeout:
            return ('agent %s went silent for more than %d s'
                    % (task.host, silence_timeout))
        return None

    def running_backups(self) -> list[int]:
        with self.session() as s:
            return list(s.scalars(sa.select(models.Backup.id).where(
                models.Backup.status == states.RUNNING)).all())

    # -- restores --------------------------------------------------------

    @_retry_deadlock
    def create_restore(self, backup_id, hosts, services, plan,
                       steps: list = (), first_tasks=None, timeout=3600,
                       deliver_within: int = 120) -> dict:
        """Create a RUNNING restore at phase 0, with that phase's tasks.

        ``first_tasks(restore)`` returns the task specs of phase 0; the
        restore, its ``steps`` (phase ``load_db``: what the plan skips)
        and those tasks are one transaction, so no restore is ever at a
        phase whose tasks do not exist. The created tasks are returned in
        ``tasks``, ready to be sent.
        """
        with self.session() as s:
            restore = models.Restore(
                backup_id=backup_id, status=states.RUNNING,
                hosts=list(hosts), services=list(services), plan=plan,
                phase=0, created_at=_now())
            s.add(restore)
            s.flush()
            out = _row(restore, *_RESTORE_FIELDS)
            self._add_steps(s, restore.id, 'load_db', steps)
            out['tasks'] = _insert_tasks(
                s, first_tasks(out) if first_tasks else [], timeout,
                deliver_within)
            return out

    @_retry_deadlock
    def start_restore_phase(self, restore_id: int, from_phase: int,
                            to_phase: int, specs: list, timeout: int,
                            deliver_within: int = 120) -> list | None:
        """Move a restore to its next phase together with its tasks.

        Compare-and-set on the phase, so one conductor moves it; the new
        phase and its tasks commit together, so a conductor killed (or a
        database failing) here leaves the restore at the phase it was at,
        never at one whose tasks are missing. Returns the created tasks,
        or None when the restore was not at ``from_phase`` (any more).
        """
        with self.session() as s:
            if not s.execute(
                    sa.update(models.Restore)
                    .where(models.Restore.id == restore_id,
                           models.Restore.phase == from_phase,
                           models.Restore.status == states.RUNNING)
                    .values(phase=to_phase)).rowcount:
                return None
            return _insert_tasks(s, specs, timeout, deliver_within)

    @_retry_deadlock
    def end_restore(self, restore_id: int, from_phase: int, status: str,
                    done_phase: int, error: str | None = None) -> bool:
        """End a restore at ``from_phase``: status and phase at once.

        ``error`` is set only when the restore has none yet.
        """
        values = dict(status=status, phase=done_phase, finished_at=_now())
        if error:
            values['error'] = sa.func.coalesce(models.Restore.error, error)
        with self.session() as s:
            return bool(s.execute(
                sa.update(models.Restore)
                .where(models.Restore.id == restore_id,
                       models.Restore.phase == from_phase,
                       models.Restore.status == states.RUNNING)
                .values(**values)).rowcount)

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

    def restores_with_unanswered_rollback(self) -> list[int]:
        """Ids of ended restores with a rollback that may be asked again.

        Those with a rollback task that timed out or failed and was not
        retried yet (retry_restore_task); the caller decides which.
        """
        with self.session() as s:
            return list(s.scalars(
                sa.select(models.Task.restore_id).distinct()
                .join(models.Restore,
                      models.Restore.id == models.Task.restore_id)
                .where(models.Task.status.in_((states.TIMED_OUT,
                                               states.FAILED)),
                       models.Task.kind == 'restore_rollback',
                       sa.or_(models.Task.error.is_(None),
                              sa.not_(models.Task.error.like(
                                  '%(asked again)'))),
                       models.Restore.status != states.RUNNING)
                .order_by(models.Task.restore_id)).all())

    @_retry_deadlock
    def retry_restore_task(self, task: dict, specs: list, timeout: int,
                           deliver_within: int = 120) -> list[dict]:
        """Create ``specs`` in place of ``task``, which ended; once.

        Compare-and-set on the ended task (its error gains a note), so
        several conductors retrying it create one set of new tasks.
        Returns the created tasks, or [] when another retried it first.
        """
        note = 'asked again'
        with self.session() as s:
            if not s.execute(
                    sa.update(models.Task)
                    .where(models.Task.id == task['id'],
                           models.Task.status == task['status'],
                           models.Task.error.is_(None)
                           if task['error'] is None
                           else models.Task.error == task['error'])
                    .values(error='%s (%s)' % (task['error'] or
                                               task['status'], note))
            ).rowcount:
                return []
            return _insert_tasks(s, specs, timeout, deliver_within)

    @_retry_deadlock
    def set_restore_error(self, restore_id: int, error: str) -> None:
        with self.session() as s:
            s.execute(sa.update(models.Restore)
                      .where(models.Restore.id == restore_id,
                             models.Restore.error.is_(None))
                      .values(error=error))

    @_retry_deadlock
    def add_restore_steps(self, restore_id: int, phase: str,
                          steps: list) -> None:
        with self.session() as s:
            self._add_steps(s, restore_id, phase, steps)

    @staticmethod
    def _add_steps(s, restore_id, phase, steps):
        if not steps:
            return
        now = _now()
        seq = s.scalar(sa.select(sa.func.count())
                       .select_from(models.RestoreStep)
                       .where(models.RestoreStep.restore_id == restore_id))
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
