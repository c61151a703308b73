"""Record agents' reports in batches: one transaction per batch.

A fleet of 1000 agents sends 2000 reports (started, finished) within
seconds. Writing each in its own transaction costs the conductor several
milliseconds of CPU per agent and serialises the reports on the database;
here the RPC handlers only queue a report, and one thread writes whatever
has queued up meanwhile in one transaction (Catalogue.record_reports),
then moves the operations of the tasks that ended on, once per backup.
Heartbeats (1000 agents every 10 s) take the same way.

Nothing is dropped or counted twice:

* a batch is all or nothing, and its rows are compare-and-set, so a batch
  that failed is simply written again; only what its committed
  transaction ended is routed;
* while the database is unreachable, the batch waits and is retried (the
  reports stay queued in order, none is dropped);
* a batch that fails for another reason is split until the one report
  that cannot be written is found; that one is logged and dropped, as a
  failing RPC handler drops its message, and its task times out;
* stop() writes what is queued before returning (the RPC server is
  stopped first, so nothing new arrives).

A report is acknowledged to the broker when it is handed to the conductor
(oslo.messaging's RPC servers acknowledge before dispatching), so a
conductor killed with reports still queued loses them exactly as it lost
the report it was handling before batching: the task then times out
(``[conductor] task_silence_timeout``). The queue holds at most one batch
being written plus what arrived meanwhile.
"""

import collections
import threading
import time

from oslo_db import exception as db_exc
from oslo_log import log as logging

LOG = logging.getLogger(__name__)

STARTED = 'started'
PROGRESS = 'progress'
FINISHED = 'finished'
HEARTBEAT = 'heartbeat'
GOODBYE = 'goodbye'
SKEWED = 'skewed'

#: Errors after which the same batch is written again, unchanged. A
#: duplicate entry is another conductor recording a new agent first.
TRANSIENT = (db_exc.DBConnectionError, db_exc.DBDeadlock,
             db_exc.DBDuplicateEntry)


class ReportRecorder:
    """Queue task reports; a thread writes them to the catalogue.

    ``on_ended(tasks)`` is called with the tasks each committed batch
    ended (dicts as Catalogue.get_task returns them).
    """

    def __init__(self, catalogue, on_ended, batch_size: int = 500,
                 retry_interval: float = 1.0, on_retried=None,
                 linger: float = 0.05):
        self.catalogue = catalogue
        self.on_ended = on_ended
        #: Seconds the first report of a batch waits for others: a batch
        #: costs a few queries whatever its size, so a fan-out's reports
        #: are better written 50 at a time than 5.
        self.linger = linger
        #: Called with the ids of the tasks a retried batch reported
        #: ended: a failed commit may have been written after all, and
        #: then the retry ends nothing and routes nothing.
        self.on_retried = on_retried
        self.batch_size = batch_size
        self.retry_interval = retry_interval
        self._queue = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._busy = False
        self._thread = None
        #: Reports received and written (or dropped) so far: what
        #: wait_written compares.
        self._received = 0
        self._written = 0

    # -- producers (RPC handler threads) ---------------------------------

    def started(self, task_id: str) -> None:
        self._put((STARTED, task_id, None))

    def progress(self, task_id: str, nbytes: int, nfiles: int) -> None:
        self._put((PROGRESS, task_id, (nbytes, nfiles)))

    def finished(self, task_id: str, status: str, result: dict,
                 error: str | None) -> None:
        self._put((FINISHED, task_id, (status, result, error)))

    def heartbeat(self, host: str, version: str, info: dict,
                  clock_offset: float | None = None) -> None:
        self._put((HEARTBEAT, host, (version, info, clock_offset)))

    def goodbye(self, host: str) -> None:
        """The agent stopped cleanly: down at once, after its reports."""
        self._put((GOODBYE, host, None))

    def skewed(self, host: str, version: str, info: dict,
               clock_offset: float) -> None:
        """A heartbeat refused only for its time: keep the offset."""
        self._put((SKEWED, host, (version, info, clock_offset)))

    def _put(self, report):
        with self._cond:
            self._queue.append(report)
            self._received += 1
            # All: wait_written callers wait on the same condition.
            self._cond.notify_all()

    # -- life cycle -----------------------------------------------------

    def start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(target=self._loop,
                                        name='report-recorder', daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 60) -> None:
        """Write what is queued, then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                LOG.error('%d task reports were not written to the '
                          'catalogue before stopping', len(self._queue))
            self._thread = None

    def flush(self) -> None:
        """Write everything queued now, in this thread (tests, no thread)."""
        while True:
            batch = self._take()
            if not batch:
                return
            try:
                self._write(batch)
            finally:
                self._done(len(batch))

    def wait_written(self, timeout: float) -> bool:
        """Wait until every report received so far is written.

        Returns False when that took longer than ``timeout`` seconds (the
        catalogue is down or far behind).
        """
        with self._cond:
            target = self._received
            return self._cond.wait_for(lambda: self._written >= target,
                                       timeout)

    def _done(self, n):
        with self._cond:
            self._written += n
            self._cond.notify_all()

    def pending(self) -> int:
        """Reports queued or being written."""
        with self._cond:
            return len(self._queue) + (1 if self._busy else 0)

    # -- the writer thread ----------------------------------------------

    def _take(self):
        with self._cond:
            n = min(len(self._queue), self.batch_size)
            return [self._queue.popleft() for _ in range(n)]

    def _loop(self):
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return      # stopping, and everything is written
                deadline = time.monotonic() + self.linger
                while (len(self._queue) < self.batch_size and
                       not self._stopping):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                n = min(len(self._queue), self.batch_size)
                batch = [self._queue.popleft() for _ in range(n)]
                self._busy = True
            try:
                self._write(batch)
            except Exception:
                # _write only raises when it cannot go on at all.
                LOG.exception('Recording %d task reports failed', len(batch))
            finally:
                with self._cond:
                    self._busy = False
                self._done(len(batch))

    def _write(self, batch):
        """Write one batch, whatever it takes; route what it ended."""
        retried = False
        while True:
            try:
                ended = self.catalogue.record_reports(batch)
                break
            except TRANSIENT as exc:
                retried = True
                LOG.warning('Cannot write %d task reports to the catalogue '
                            '(%s); retrying in %.0f s', len(batch),
                            type(exc).__name__, self.retry_interval)
                time.sleep(self.retry_interval)
            except Exception:
                if len(batch) == 1:
                    LOG.exception('Dropping the %s report of task %s: the '
                                  'catalogue refuses it', batch[0][0],
                                  batch[0][1])
                    return
                # One report poisons the batch: find it, write the rest.
                half = len(batch) // 2
                self._write(batch[:half])
                self._write(batch[half:])
                return
        try:
            self.on_ended(ended)
            if retried and self.on_retried is not None:
                self.on_retried([r[1] for r in batch if r[0] == FINISHED])
        except Exception:
            LOG.exception('Moving on the operations of %d ended tasks '
                          'failed', len(ended))
