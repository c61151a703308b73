"""A bandwidth cap on artifact writes (``[agent] bandwidth_limit``).

Backups of a busy controller share its disks and uplink with the cloud;
capping the write rate keeps them from starving the services. The cap is a
token bucket over the bytes written to any target, per writer.
"""

import time

from osbackup.storage import base


class ThrottledWriter(base.Writer):
    """Delay writes so the average rate stays under ``rate`` bytes/s."""

    def __init__(self, writer, rate: float, clock=time.monotonic,
                 sleep=time.sleep):
        self._writer = writer
        self._rate = float(rate)
        self._clock = clock
        self._sleep = sleep
        self._start = clock()
        self._sent = 0

    def write(self, data):
        self._sent += len(data)
        ahead = self._sent / self._rate - (self._clock() - self._start)
        if ahead > 0:
            self._sleep(ahead)
        return self._writer.write(data)

    def commit(self):
        return self._writer.commit()

    def abort(self):
        self._writer.abort()


class ThrottledStorage:
    """A storage whose writers are throttled; everything else passes."""

    def __init__(self, storage, rate: float):
        self._storage = storage
        self._rate = rate

    def __getattr__(self, name):
        return getattr(self._storage, name)

    def open_writer(self, key):
        return ThrottledWriter(self._storage.open_writer(key), self._rate)


def wrap(conf, storage):
    limit = conf.agent.bandwidth_limit
    if not limit:
        return storage
    return ThrottledStorage(storage, limit * 1024 * 1024)
