"""Fail a backup at once when its target cannot hold it.

A backup is about as large as the previous one of the same service on
this host. The conductor may send that size (``expected_bytes`` in the
task's parameters, from the catalogue); otherwise the agent uses its own
record of its last successful backup of the service. Before any byte is
written, every target must have that much free space plus
``[agent] free_space_margin`` percent. A disk that fills up anyway fails
the write (ENOSPC): the partial object is deleted and the task FAILS.
"""

import contextlib
import json
import threading

from osbackup import durable
from osbackup import exception
from osbackup.manage import output


class SpaceGuard:
    """Free-space checks against the last backup sizes of this node."""

    def __init__(self, conf, host: str, path: str):
        self.margin = conf.agent.free_space_margin
        self.host = host
        self.path = path
        self._lock = threading.Lock()

    def _sizes(self) -> dict:
        with contextlib.suppress(FileNotFoundError, ValueError):
            with open(self.path) as f:
                return json.load(f)
        return {}

    def expected(self, service: str, params: dict) -> int | None:
        size = params.get('expected_bytes')
        if isinstance(size, int) and not isinstance(size, bool):
            return size
        return self._sizes().get(service)

    def check(self, service: str, params: dict, targets) -> None:
        """Raise InsufficientSpace when a target lacks the room."""
        expected = self.expected(service, params)
        if not expected:
            return      # the first backup: nothing to go by
        needed = expected * (100 + self.margin) // 100
        for target in targets:
            try:
                free = target.free_bytes()
            except OSError:
                free = None
            if free is not None and free < needed:
                raise exception.InsufficientSpace(
                    'Not enough free space on backup target %s for %s: the '
                    'last backup of %s on %s took %s, %s with the %d%% '
                    'margin, and only %s are free; nothing was written'
                    % (target.name, service, service, self.host,
                       output.human_size(expected), output.human_size(needed),
                       self.margin, output.human_size(free)))

    def record(self, service: str, nbytes: int) -> None:
        with self._lock:
            sizes = self._sizes()
            sizes[service] = nbytes
            durable.write_json(self.path, sizes)
