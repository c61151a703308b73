"""Wait for an operation to end, showing progress on stderr.

The operation runs in the conductor and the agents, not here: when the
catalogue cannot be read for a while, waiting says so and polls on; it
gives up (with the operation still running) only after the catalogue was
unreachable for as long as ``[database] max_retries`` x
``retry_interval`` allow.
"""

import sys
import time

import osbackup.conf
from osbackup.db import engine
from osbackup.manage import output
from osbackup import states

CONF = osbackup.conf.CONF

#: Seconds before the first poll; each further wait is BACKOFF times
#: longer, up to the caller's interval: a short operation is seen ending
#: at once, a long one costs one catalogue read per interval.
FIRST_POLL = 0.05
BACKOFF = 2.0
#: The longest wait between polls: the operator waits on average half of
#: it after the operation ended; a poll is one indexed catalogue read.
POLL_INTERVAL = 0.25
#: Seconds between two progress lines of a running operation.
PROGRESS_EVERY = 1.0


def _restore_line(op: dict) -> str:
    # Restores run phase by phase and create each phase's tasks when it
    # starts: phases and steps are what stays meaningful.
    from osbackup.conductor import restore_plan
    from osbackup.conductor import restores
    from osbackup import restore_phases
    planned = len(restore_plan.steps(op['plan'])) if op.get('plan') else 0
    done = len(op.get('steps') or [])
    index = op.get('phase') or 0
    if index < len(restore_phases.PHASES):
        phase = 'phase %d/%d %s' % (index + 1, len(restore_phases.PHASES),
                                    restores.phase_name(index))
    else:
        phase = 'phase %s' % restores.phase_name(index)
    running = [t['host'] for t in op.get('tasks', [])
               if t['status'] in states.TASK_ACTIVE]
    return '%s, %d/%d steps done%s' % (
        phase, min(done, planned) if planned else done, planned,
        ', running on %s' % ', '.join(sorted(set(running))) if running
        else '')


def _tasks_line(op: dict) -> str:
    tasks = op.get('tasks', [])
    done = sum(t['status'] in states.TASK_DONE for t in tasks)
    running = sum(t['status'] == states.RUNNING for t in tasks)
    nbytes = sum(t.get('progress_bytes') or 0 for t in tasks)
    nfiles = sum(t.get('progress_files') or 0 for t in tasks)
    return ('%d/%d tasks done, %d running, %s read, %d files'
            % (done, len(tasks), running, output.human_size(nbytes), nfiles))


def progress_line(op: dict, elapsed: float) -> str:
    body = _restore_line(op) if 'phase' in op else _tasks_line(op)
    return '[%4ds] %s: %s' % (elapsed, op['status'], body)


def outage_budget() -> float | None:
    """Seconds an unreachable catalogue is waited out; None: forever."""
    db = CONF.database
    if db.max_retries < 0:
        return None
    return max(db.max_retries * db.retry_interval, db.retry_interval)


class _Outage:
    """Say once that the catalogue is unreachable, and when it is back."""

    def __init__(self, out, budget):
        self.out = out
        self.budget = budget
        self.since = None

    def failed(self, exc) -> None:
        now = time.monotonic()
        if self.since is None:
            self.since = now
            print('Catalogue database unreachable (%s); the operation goes '
                  'on, retrying every %d s' % (
                      engine.reason(exc),
                      CONF.database.retry_interval),
                  file=self.out, flush=True)
        elif self.budget is not None and now - self.since > self.budget:
            raise exc

    def recovered(self) -> None:
        if self.since is not None:
            print('Catalogue database reachable again after %d s'
                  % (time.monotonic() - self.since), file=self.out,
                  flush=True)
            self.since = None


def wait(fetch, interval: float = POLL_INTERVAL, out=None,
         done=None) -> dict:
    """Poll ``fetch()`` until the operation is no longer running.

    Polls back off from FIRST_POLL to ``interval`` seconds.
    """
    from oslo_db import exception as db_exc
    out = out or sys.stderr
    start = time.monotonic()
    outage = _Outage(out, outage_budget())
    last, last_status, shown_at = None, None, None
    delay = min(FIRST_POLL, interval)
    while True:
        try:
            op = fetch()
        except db_exc.DBConnectionError as exc:
            outage.failed(exc)
            time.sleep(max(interval, CONF.database.retry_interval))
            continue
        outage.recovered()
        now = time.monotonic()
        line = progress_line(op, now - start)
        ended = (done or _finished)(op)
        # Polls are frequent; progress is shown at most once a second,
        # a change of state and the end at once.
        if line != last and (ended or op['status'] != last_status or
                             now - shown_at >= PROGRESS_EVERY):
            print(line, file=out, flush=True)
            last, last_status, shown_at = line, op['status'], now
        if ended:
            return op
        time.sleep(delay)
        delay = min(delay * BACKOFF, interval)


def _finished(op):
    return op['status'] not in (states.PENDING, states.RUNNING)
