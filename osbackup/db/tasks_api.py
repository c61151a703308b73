"""Catalogue queries for tasks: create, start, progress, reports, expiry.

A mixin of ``Catalogue`` (db/api.py). All state changes of tasks are
compare-and-set updates (``WHERE status IN ...``).
"""

import datetime
import uuid

import sqlalchemy as sa

from osbackup.db import models
from osbackup.db import rows
from osbackup import exception
from osbackup import states

_now = rows.now
_iso = rows.iso
_row = rows.row

TASK_FIELDS = ('id', 'backup_id', 'restore_id', 'verification_id', 'kind',
               'host', 'service',
               'params', 'status', 'created_at', 'updated_at', 'started_at',
               'finished_at', 'expires_at', 'progress_bytes',
               'progress_files', 'result', 'error')
#: What Catalogue.record_reports reads and returns of each task.
_LOCKED_FIELDS = ('id', 'backup_id', 'restore_id', 'verification_id',
                  'kind', 'host', 'service', 'params', 'status',
                  'progress_bytes', 'progress_files', 'started_at')
_ENDED_FIELDS = _LOCKED_FIELDS + ('result', 'error', 'finished_at')


def _late_success(kind: str, status: str, reported: str) -> bool:
    """A backup task timed out, then its agent reports it succeeded.

    Its artifacts are complete and stored: they are recorded (and the
    backup judged again) rather than left in storage unknown to the
    catalogue. Any other late report changes nothing.
    """
    return (kind == 'backup' and status == states.TIMED_OUT and
            reported == states.SUCCEEDED)


def insert_tasks(s, specs, timeout, deliver_within) -> list[dict]:
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
            for f in TASK_FIELDS}
        row['deliver_by'] = deliver_by
        rows_out.append(row)
    return rows_out


def _held(info) -> list:
    """The task ids a heartbeat says its agent holds."""
    tasks = info.get('tasks', []) if isinstance(info, dict) else []
    return [t for t in tasks if isinstance(t, str)]


class TaskQueries:
    """The tasks table, and the artifacts tasks report."""

    def create_task(self, kind, host, service, params, timeout,
                    backup_id=None, restore_id=None, verification_id=None,
                    deliver_within: int = 120) -> dict:
        """Create one PENDING task; see create_tasks."""
        return self.create_tasks([dict(
            kind=kind, host=host, service=service, params=params,
            backup_id=backup_id, restore_id=restore_id,
            verification_id=verification_id)], timeout, deliver_within)[0]

    @rows.retry_deadlock
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
            return insert_tasks(s, specs, timeout, deliver_within)

    def get_task(self, task_id: str) -> dict:
        with self.session() as s:
            task = s.get(models.Task, task_id)
            if task is None:
                raise exception.NotFound('Task %s not found' % task_id)
            return _row(task, *TASK_FIELDS)

    @rows.retry_deadlock
    def task_started(self, task_id: str) -> bool:
        now = _now()
        with self.session() as s:
            return bool(s.execute(
                sa.update(models.Task)
                .where(models.Task.id == task_id,
                       models.Task.status == states.PENDING)
                .values(status=states.RUNNING, started_at=now,
                        updated_at=now)).rowcount)

    @rows.retry_deadlock
    def task_progress(self, task_id: str, nbytes: int, nfiles: int) -> bool:
        with self.session() as s:
            return bool(s.execute(
                sa.update(models.Task)
                .where(models.Task.id == task_id,
                       models.Task.status.in_(states.TASK_ACTIVE))
                .values(status=states.RUNNING, progress_bytes=nbytes,
                        progress_files=nfiles, updated_at=_now())).rowcount)

    @rows.retry_deadlock
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
            return dict(_row(task, *TASK_FIELDS), late=late)

    @rows.retry_deadlock
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

    @rows.retry_deadlock
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
