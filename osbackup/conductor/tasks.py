"""Task bookkeeping shared by every operation.

Every report and every deadline ends a task through here: the catalogue
records the end once (late or repeated reports change nothing), then the
operation the task belongs to is moved on.
"""

from oslo_log import log as logging

from osbackup.db import rows
from osbackup import exception
from osbackup import states
from osbackup import task_log

LOG = logging.getLogger(__name__)


class TaskTracker:
    """Record task ends and route them to their operation."""

    def __init__(self, conf, catalogue, backups, restores, verifier=None,
                 pruner=None, hearing=None):
        self.conf = conf
        #: When this conductor could hear its agents (hearing.py); None
        #: counts wall-clock time (tests, tools without a listener).
        self.hearing = hearing
        self.catalogue = catalogue
        self.backups = backups
        self.restores = restores
        self.verifier = verifier
        self.pruner = pruner

    def finished(self, task_id, status, result, error) -> None:
        """Record one task's end now and move its operation on."""
        task = self.catalogue.task_finished(task_id, status, result, error)
        if task is None:
            LOG.debug('Ignoring the late or repeated report of task %s',
                      task_id)
            return
        self._log_end(task)
        self._route(task)
        if task.get('late'):
            self._late_success(task)

    def ended(self, tasks: list) -> None:
        """Move on the operations of tasks a batch of reports ended.

        Each backup is checked once per batch, not once per task: with a
        thousand agents reporting at once that is a few count queries
        instead of a thousand.
        """
        backup_ids = []
        for task in tasks:
            self._log_end(task)
            if task['kind'] == 'backup':
                if task['backup_id'] not in backup_ids:
                    backup_ids.append(task['backup_id'])
            else:
                self._route(task)
        for backup_id in backup_ids:
            self.backups.task_done({'kind': 'backup',
                                    'backup_id': backup_id})
        for task in tasks:
            if task.get('late'):
                self._late_success(task)

    def _late_success(self, task: dict) -> None:
        """A timed-out backup task succeeded after all: keep its artifacts.

        The catalogue has recorded them; a backup already judged FAILED is
        judged again, and one being deleted is deleted again so that the
        late objects go with it instead of staying in storage unknown.
        """
        backup_id = task['backup_id']
        LOG.warning('Task %s (%s on %s) had timed out but its agent finished '
                    'it: its artifacts are recorded in backup %s',
                    task['id'], task['service'], task['host'], backup_id)
        status = self.catalogue.rejudge_backup(backup_id)
        if status:
            LOG.info('Backup %s ended %s after all', backup_id, status)
            return
        try:
            backup = self.catalogue.get_backup_summary(backup_id)
        except exception.NotFound:
            return
        if backup['status'] == states.DELETING and self.pruner is not None:
            try:
                self.pruner.delete(backup_id, force=True)
            except exception.OsbackupError as exc:
                LOG.warning('Backup %s: the late artifacts of task %s wait '
                            'for the next prune: %s', backup_id, task['id'],
                            exc.message)

    def recheck(self, task_ids: list) -> None:
        """Close the backups of tasks that may have ended unseen.

        A batch whose commit failed may have been written all the same;
        its retry then ends nothing. Closing a backup is compare-and-set,
        so checking again is harmless.
        """
        backup_ids = set()
        for task_id in task_ids:
            try:
                task = self.catalogue.get_task(task_id)
            except exception.NotFound:
                continue
            if task['kind'] == 'backup' and task['backup_id'] is not None:
                backup_ids.add(task['backup_id'])
        for backup_id in sorted(backup_ids):
            self.backups.task_done({'kind': 'backup',
                                    'backup_id': backup_id})

    @staticmethod
    def _log_end(task):
        # Once per task at INFO, what and how much, so a silent service is
        # visible in the log too; the error is the cause, never a trace.
        took = rows.seconds_between(task.get('started_at'),
                                    task.get('finished_at'))
        LOG.info('Task %s ended %s: %s, %d bytes%s%s', task['id'],
                 task['status'], task_log.describe(task),
                 task_log.stored_bytes(task.get('result')),
                 ' in %.1f s' % took if took is not None else '',
                 ': %s' % task['error'] if task['error'] else '')

    def _route(self, task):
        kind = task['kind']
        if kind == 'backup':
            self.backups.task_done(task)
        elif kind == 'delete' and self.pruner is not None:
            self.pruner.task_done(task)
        elif task['restore_id'] is not None:
            self.restores.task_done(task)
        elif task['verification_id'] is not None and self.verifier:
            self.verifier.task_done(task)

    def check_deadlines(self) -> None:
        """Time out tasks whose agent went silent; move their operations.

        With ``hearing``, only the time this conductor could hear counts:
        nothing times out before it has proven it hears (drained what was
        queued for it), and an outage extends every deadline by its
        length.
        """
        opts = self.conf.conductor
        expired = []
        if self.hearing is None:
            expired = self.catalogue.expire_tasks(
                opts.task_start_timeout, opts.task_silence_timeout)
        elif self.hearing.check():
            expired = self.catalogue.expire_tasks(
                opts.task_start_timeout, opts.task_silence_timeout,
                until=self.hearing.until, heard=self.hearing.heard)
        for task in expired:
            LOG.warning('Task %s on %s timed out: %s', task['id'],
                        task['host'], task['error'])
            self._route(self.catalogue.get_task(task['id']))
        self.restores.check()
