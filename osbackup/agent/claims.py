"""Which operation holds each service of this node.

Two operations on one (host, service) never run at once: a backup of
nova while a restore swaps /etc/nova would archive a half-restored tree,
and a restore while nova is being dumped would load under the dump. A
backup (or maintenance) task holds its service while it runs; a restore
holds every service of its plan on this host from its first phase to its
last (``finish`` or ``rollback``), since the host is half-restored in
between. Claims live in memory: an agent restart rolls back interrupted
restores (their journal) and fails interrupted tasks, freeing them.
"""

import threading

from osbackup import exception


class Claims:
    """Services held, each by one owner (a task id or a restore)."""

    def __init__(self, host: str):
        self.host = host
        self._owners = {}
        self._lock = threading.Lock()

    def acquire(self, services, owner: str, refused: str) -> None:
        """Hold ``services`` for ``owner`` or raise Conflict for ``refused``.

        All or nothing; services ``owner`` already holds are fine.
        """
        with self._lock:
            for service in sorted(services):
                holder = self._owners.get(service)
                if holder is not None and holder != owner:
                    raise exception.Conflict(
                        'Another operation on %s is running on %s (%s); %s '
                        'refused' % (service, self.host, holder, refused))
            for service in services:
                self._owners[service] = owner

    def release(self, owner: str) -> None:
        with self._lock:
            self._owners = {s: o for s, o in self._owners.items()
                            if o != owner}

    def held(self) -> dict:
        with self._lock:
            return dict(self._owners)
