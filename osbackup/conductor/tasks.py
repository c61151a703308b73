"""Task bookkeeping shared by every operation.

Every report and every deadline ends a task through here: the catalogue
records the end once (late or repeated reports change nothing), then the
operation the task belongs to is moved on.
"""

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


class TaskTracker:
    """Record task ends and route them to their operation."""

    def __init__(self, conf, catalogue, backups, restores, verifier=None,
                 pruner=None):
        self.conf = conf
        self.catalogue = catalogue
        self.backups = backups
        self.restores = restores
        self.verifier = verifier
        self.pruner = pruner

    def finished(self, task_id, status, result, error) -> None:
        task = self.catalogue.task_finished(task_id, status, result, error)
        if task is None:
            LOG.debug('Ignoring the late or repeated report of task %s',
                      task_id)
            return
        LOG.info('Task %s (%s %s on %s) ended %s%s', task_id, task['kind'],
                 task['service'], task['host'], status,
                 ': %s' % error if error else '')
        self._route(task)

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
        """Time out tasks whose agent went silent; move their operations."""
        expired = self.catalogue.expire_tasks(
            self.conf.conductor.task_start_timeout,
            self.conf.conductor.task_silence_timeout)
        for task in expired:
            LOG.warning('Task %s on %s timed out: %s', task['id'],
                        task['host'], task['error'])
            self._route(self.catalogue.get_task(task['id']))
        self.restores.check()
