"""Sends a task's reports to the conductor, off the data path.

A cast waits for the broker, and oslo.messaging retries it for as long as
the broker is away, so a report sent from the thread that writes an
archive stalls the backup for the whole outage. Every report therefore
goes through one sender thread, and the runner only queues it:

* start and result reports are reliable: queued in order and sent until
  the broker takes them, with a growing pause between tries. They are cast
  ``at_least_once``: while no conductor queue exists (a broker that has
  just restarted) the broker refuses a report instead of dropping it, and
  it is tried again. A result is also in the task's journal; one this
  process could not send before it stopped is sent again by the next one
  (TaskRunner.recover). The conductor ignores a repeated report.
* progress is best-effort: one latest value per task, sent only when no
  reliable report waits, tried once, never retried or blocking; a newer
  value replaces an unsent one, and a task's result drops its progress.
"""

import collections
import threading

from oslo_log import log as logging

from osbackup import rpc

LOG = logging.getLogger(__name__)

#: Attempts oslo.messaging makes for one send of a reliable report before
#: it is put back and tried again later (a short retry, so stop() is not
#: held up by a dead broker for long).
SEND_RETRY = 1
#: Seconds between tries of a reliable report the broker did not take:
#: doubled each time up to the maximum.
BACKOFF_MIN = 1.0
BACKOFF_MAX = 30.0


class ConductorReporter:
    """Adapter between the runner's reports and the conductor RPC API.

    ``journal`` (optional) is told when a task's result has been sent.
    """

    def __init__(self, conductor_api, host: str, journal=None):
        self.api = conductor_api
        self.host = host
        self.journal = journal
        self.ctxt = rpc.admin_context()
        self._cond = threading.Condition()
        self._reliable = collections.deque()
        #: {task id: (task, nbytes, nfiles)}: the newest of each task.
        self._progress: dict[str, tuple] = {}
        self._stopping = False
        self._failing = False
        self._thread = None

    # -- what the runner calls: never blocks on the broker ----------------

    def started(self, task: dict) -> None:
        self._put_reliable(('started', task, None))

    def progress(self, task: dict, nbytes: int, nfiles: int) -> None:
        with self._cond:
            self._progress[task['id']] = (task, nbytes, nfiles)
            self._wake()

    def finished(self, task: dict, status: str, result: dict,
                 error: str | None) -> None:
        with self._cond:
            self._progress.pop(task['id'], None)
        self._put_reliable(('finished', task, {
            'status': status, 'result': result, 'error': error}))

    def _put_reliable(self, report):
        with self._cond:
            self._reliable.append(report)
            self._wake()

    def _wake(self):
        if self._thread is None and not self._stopping:
            self._thread = threading.Thread(
                target=self._loop, name='report-sender', daemon=True)
            self._thread.start()
        self._cond.notify_all()

    # -- life cycle -----------------------------------------------------

    @property
    def failing(self) -> bool:
        """Whether the last reliable report could not be sent."""
        return self._failing

    def pending(self) -> int:
        """Reliable reports not sent yet."""
        with self._cond:
            return len(self._reliable)

    def stop(self, timeout: float = 10) -> None:
        """Send what is queued for at most ``timeout`` s, then end.

        An unsent result stays unreported in the journal: the next agent
        process sends it.
        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        left = self.pending()
        if left:
            LOG.warning('%d task report(s) could not be sent to the '
                        'conductor before stopping; results are sent again '
                        'at the next start', left)

    # -- the sender thread ----------------------------------------------

    def _next(self):
        """(kind, report) to send next, or None when stopped and done."""
        with self._cond:
            while True:
                if self._reliable:
                    return 'reliable', self._reliable[0]
                if self._progress:
                    task_id = next(iter(self._progress))
                    return 'progress', self._progress.pop(task_id)
                if self._stopping:
                    self._thread = None
                    return None
                self._cond.wait()

    def _loop(self):
        backoff = BACKOFF_MIN
        while (item := self._next()) is not None:
            kind, report = item
            if kind == 'progress':
                self._send_progress(*report)
                continue
            try:
                self._send_reliable(*report)
            except Exception as exc:
                if not self._failing:
                    LOG.warning('Cannot send task reports to the conductor '
                                '(%s); retrying, the tasks go on', exc)
                self._failing = True
                with self._cond:
                    if self._stopping:
                        # stop() waits a bounded time; the journal keeps
                        # the results for the next process.
                        self._thread = None
                        return
                    self._cond.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            if self._failing:
                LOG.info('Task reports reach the conductor again')
            self._failing = False
            backoff = BACKOFF_MIN
            with self._cond:
                self._reliable.popleft()

    def _send_reliable(self, kind, task, report):
        if kind == 'started':
            self.api.task_started(self.ctxt, task['id'], self.host,
                                  retry=SEND_RETRY, at_least_once=True)
            return
        self.api.task_finished(self.ctxt, task['id'], self.host,
                               report['status'], report['result'],
                               report['error'], retry=SEND_RETRY,
                               at_least_once=True)
        if self.journal is not None:
            self._mark_reported(task)

    def _mark_reported(self, task):
        try:
            self.journal.reported(task['id'])
        except (OSError, ValueError) as exc:
            # At worst the next process sends the result once more.
            LOG.warning('Could not journal that the result of task %s '
                        'was sent: %s', task['id'], exc)

    def _send_progress(self, task, nbytes, nfiles):
        try:
            self.api.task_progress(self.ctxt, task['id'], self.host,
                                   nbytes, nfiles, retry=0)
        except Exception as exc:
            # Advisory: the next value or the result supersedes it.
            LOG.debug('Progress of task %s not sent: %s', task['id'], exc)
