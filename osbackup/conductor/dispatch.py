"""Record a task in the catalogue, then cast it to its agent.

The one way tasks leave the conductor: the row exists before the cast, the
message carries a deliver-by time (casts never expire on their own), and a
cast that no queue can receive fails the task at once instead of vanishing.
"""

from concurrent import futures
import contextlib
import functools
import threading

from oslo_log import log as logging
import oslo_messaging as messaging

from osbackup import rpc
from osbackup import signing
from osbackup import states

LOG = logging.getLogger(__name__)


def skew_failure(task: dict, offset: float) -> tuple:
    """How a task for an agent whose clock is off fails, not cast."""
    LOG.error('Not sending task %s to %s: its clock is %+.0f s off',
              task['id'], task['host'], offset)
    return (task['id'], states.FAILED, {},
            'agent %s has a clock skew of %+.0f s, over the %d s the '
            'message signatures allow: the conductor refuses its messages, '
            'so the task was not sent. Fix its clock (NTP).'
            % (task['host'], offset, signing.MAX_SKEW))


class Dispatcher:
    """Create and send tasks; ``on_failed(task_id, error)`` ends them."""

    def __init__(self, conf, catalogue, agent_api, threads: int = 1):
        self.conf = conf
        self.catalogue = catalogue
        self.agent_api = agent_api
        self.on_failed = None
        self._local = threading.local()
        #: Threads casting a wave at once (see _send_all).
        self.threads = threads
        self._senders = None
        self._senders_lock = threading.Lock()

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
        return self.send(tasks)

    def send(self, tasks: list) -> list[dict]:
        """Send tasks already recorded (by the caller's own transaction).

        Undeliverable ones are failed once all were sent, as in wave().
        """
        skewed = self.catalogue.skewed_agents(
            {t['host'] for t in tasks}, self.conf.conductor.agent_down_time)
        with self.batch():
            for task in tasks:
                if task['host'] in skewed:
                    self._failed(*skew_failure(task, skewed[task['host']]))
            for failure in self._send_all([t for t in tasks
                                           if t['host'] not in skewed]):
                if failure:
                    self._failed(*failure)
        return tasks

    def _send_all(self, tasks):
        """Cast every task; the failures, in order (None: sent).

        Every cast waits for the broker's publisher confirm. One thread
        sending a wave of a thousand casts spends most of its time in
        those waits, and each wait ends behind the threads handling the
        agents' reports for the GIL; a few sender threads overlap them.
        Each sender holds one connection of oslo.messaging's sender pool
        while it casts ([conductor] dispatch_threads is kept within it).
        """
        # One context for the wave: one request, and no context to build
        # per task.
        send = functools.partial(self._send, ctxt=rpc.admin_context())
        threads = self.threads
        if threads <= 1 or len(tasks) <= 1:
            return [send(task) for task in tasks]
        return list(self._pool(threads).map(send, tasks))

    def _pool(self, threads):
        with self._senders_lock:
            if self._senders is None:
                self._senders = futures.ThreadPoolExecutor(
                    max_workers=threads, thread_name_prefix='dispatch')
            return self._senders

    def stop(self) -> None:
        """End the sender threads (after the last wave)."""
        with self._senders_lock:
            if self._senders is not None:
                self._senders.shutdown(wait=True)
                self._senders = None

    def _send(self, task, ctxt):
        message = {'id': task['id'], 'kind': task['kind'],
                   'host': task['host'], 'service': task['service'],
                   'backup_id': task['backup_id'], 'params': task['params'],
                   'expires_at': task['deliver_by']}
        try:
            self.agent_api.run_task(ctxt, task['host'], message)
        except (messaging.MessageUndeliverable,
                messaging.MessageDeliveryFailure) as exc:
            LOG.error('Could not send task %s to %s: %s', task['id'],
                      task['host'], exc)
            return (task['id'], states.FAILED, {},
                    'agent %s is not listening (no queue on the broker): %s'
                    % (task['host'], type(exc).__name__))
        return None
