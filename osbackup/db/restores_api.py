"""Catalogue queries for restores: create, phases, steps, retries.

A mixin of ``Catalogue`` (db/api.py).
"""

import sqlalchemy as sa

from osbackup.db import models
from osbackup.db import rows
from osbackup.db import tasks_api
from osbackup import exception
from osbackup import states

_now = rows.now
_iso = rows.iso
_row = rows.row

_RESTORE_FIELDS = ('id', 'backup_id', 'status', 'hosts', 'services', 'plan',
                   'phase', 'created_at', 'finished_at', 'error')


class RestoreQueries:
    """The restores table and its steps."""

    @rows.retry_deadlock
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
            out['tasks'] = tasks_api.insert_tasks(
                s, first_tasks(out) if first_tasks else [], timeout,
                deliver_within)
            return out

    @rows.retry_deadlock
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
            return tasks_api.insert_tasks(s, specs, timeout, deliver_within)

    @rows.retry_deadlock
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
            out['tasks'] = [_row(t, *tasks_api.TASK_FIELDS) for t in tasks]
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

    @rows.retry_deadlock
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
            return tasks_api.insert_tasks(s, specs, timeout, deliver_within)

    @rows.retry_deadlock
    def set_restore_error(self, restore_id: int, error: str) -> None:
        with self.session() as s:
            s.execute(sa.update(models.Restore)
                      .where(models.Restore.id == restore_id,
                             models.Restore.error.is_(None))
                      .values(error=error))

    @rows.retry_deadlock
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
            return [_row(t, *tasks_api.TASK_FIELDS) for t in tasks]

    def running_restores(self) -> list[int]:
        with self.session() as s:
            return list(s.scalars(sa.select(models.Restore.id).where(
                models.Restore.status == states.RUNNING)).all())
