"""Record a task in the catalogue, then cast it to its agent.

The one way tasks leave the conductor: the row exists before the cast, the
message carries a deliver-by time (casts never expire on their own), and a
cast that no queue can receive fails the task at once instead of vanishing.
"""

import contextlib
import threading

from oslo_log import log as logging
import oslo_messaging as messaging

from osbackup import rpc
from osbackup import states

LOG = logging.getLogger(__name__)


class Dispatcher:
    """Create and send tasks; ``on_failed(task_id, error)`` ends them."""

    def __init__(self, conf, catalogue, agent_api):
        self.conf = conf
        self.catalogue = catalogue
        self.agent_api = agent_api
        self.on_failed = None
        self._local = threading.local()

    @contextlib.contextmanager
    def batch(self):
        """Report undeliverable tasks only after a whole wave was sent.

        Ending a task moves its operation on; doing that in the middle of
        sending a phase would judge the phase before all its tasks exist.
        """
        if getattr(self._local, 'deferred', None) is not None:
            yield       # already inside a wave
            return
        self._local.deferred = deferred = []
        try:
            yield
        finally:
            self._local.deferred = None
            for args in deferred:
                self.on_failed(*args)

    def _failed(self, *args):
        deferred = getattr(self._local, 'deferred', None)
        if deferred is not None:
            deferred.append(args)
        else:
            self.on_failed(*args)

    def wave(self, specs: list) -> list[dict]:
        """Create every task of a wave, then send them.

        All rows exist before the first cast: a report arriving while the
        wave is being sent never sees a partial set of tasks.
        """
        if not specs:
            return []
        tasks = self.catalogue.create_tasks(
            specs, self.conf.conductor.task_timeout,
            deliver_within=self.conf.conductor.task_start_timeout)
        with self.batch():
            for task in tasks:
                self._send(task)
        return tasks

    def _send(self, task):
        message = {'id': task['id'], 'kind': task['kind'],
                   'host': task['host'], 'service': task['service'],
                   'backup_id': task['backup_id'], 'params': task['params'],
                   'expires_at': task['deliver_by']}
        try:
            self.agent_api.run_task(rpc.admin_context(), task['host'],
                                    message)
        except (messaging.MessageUndeliverable,
                messaging.MessageDeliveryFailure) as exc:
            LOG.error('Could not send task %s to %s: %s', task['id'],
                      task['host'], exc)
            self._failed(task['id'], states.FAILED, {},
                         'agent %s is not listening (no queue on the '
                         'broker): %s' % (task['host'], type(exc).__name__))
