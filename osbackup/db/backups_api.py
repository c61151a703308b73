"""Catalogue queries for backups: create, read, judge, fail.

A mixin of ``Catalogue`` (db/api.py).
"""

import uuid

import sqlalchemy as sa

from osbackup.db import models
from osbackup.db import rows
from osbackup.db import tasks_api
from osbackup import exception
from osbackup import states

_now = rows.now
_iso = rows.iso
_row = rows.row

_BACKUP_FIELDS = ('id', 'uuid', 'status', 'hosts', 'services', 'policy',
                  'targets',
                  'verified', 'created_at', 'finished_at', 'error')
_ARTIFACT_FIELDS = ('id', 'backup_id', 'task_id', 'host', 'service', 'name',
                    'kind', 'status', 'location', 'size', 'sha256', 'meta',
                    'created_at', 'parent_id')
#: What Catalogue.record_reports reads and returns of each task.


class BackupQueries:
    """The backups table, and its artifacts as one backup's parts."""

    @rows.retry_deadlock
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
            out['tasks'] = [_row(t, *tasks_api.TASK_FIELDS) for t in tasks]
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

    @rows.retry_deadlock
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

    @rows.retry_deadlock
    def fail_backup(self, backup_id: int, error: str) -> None:
        with self.session() as s:
            s.execute(sa.update(models.Backup)
                      .where(models.Backup.id == backup_id,
                             models.Backup.status == states.RUNNING)
                      .values(status=states.FAILED, finished_at=_now(),
                              error=error))
