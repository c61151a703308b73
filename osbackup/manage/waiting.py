"""Wait for an operation to end, showing progress on stderr."""

import sys
import time

from osbackup.manage import output
from osbackup import states


def progress_line(op: dict, elapsed: float) -> str:
    tasks = op.get('tasks', [])
    done = sum(t['status'] in states.TASK_DONE for t in tasks)
    running = sum(t['status'] == states.RUNNING for t in tasks)
    nbytes = sum(t.get('progress_bytes') or 0 for t in tasks)
    nfiles = sum(t.get('progress_files') or 0 for t in tasks)
    return ('[%4ds] %s: %d/%d tasks done, %d running, %s read, %d files'
            % (elapsed, op['status'], done, len(tasks), running,
               output.human_size(nbytes), nfiles))


def wait(fetch, interval: float = 1.0, out=None, done=None) -> dict:
    """Poll ``fetch()`` until the operation is no longer running."""
    out = out or sys.stderr
    start = time.monotonic()
    last = None
    while True:
        op = fetch()
        line = progress_line(op, time.monotonic() - start)
        if line != last:
            print(line, file=out, flush=True)
            last = line
        if (done or _finished)(op):
            return op
        time.sleep(interval)


def _finished(op):
    return op['status'] not in (states.PENDING, states.RUNNING)
