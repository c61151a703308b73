"""osbackup-conductor that halts before a restore's stop tasks go out.

Test-only. While the file named by ``OSBACKUP_TEST_PAUSE_FLAG`` exists,
the conductor stops for good just before it sends (or, in a conductor
that records a phase before its tasks, creates) the tasks of a restore's
``stop`` phase, and says so by creating ``<flag>.reached``: the test
kills it there, in the window between the phase change and its tasks.
"""

import os
import time

from osbackup.cmd import conductor
from osbackup.conductor import dispatch

FLAG = os.environ.get('OSBACKUP_TEST_PAUSE_FLAG', '')


def _pausing(method):
    def wrapper(self, items):
        if FLAG and os.path.exists(FLAG) and any(
                item.get('kind') == 'restore_stop' for item in items):
            with open(FLAG + '.reached', 'w'):
                pass
            while True:
                time.sleep(1)   # until killed
        return method(self, items)
    return wrapper


for _name in ('wave', 'send'):
    if hasattr(dispatch.Dispatcher, _name):
        setattr(dispatch.Dispatcher, _name,
                _pausing(getattr(dispatch.Dispatcher, _name)))


if __name__ == '__main__':
    conductor.main()
