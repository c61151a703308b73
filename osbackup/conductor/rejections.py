"""Senders whose messages this conductor refuses, so operators see them.

An agent with no RPC key, or another one, starts and heartbeats, and the
conductor refuses every message: without this it never appears anywhere
but the conductor's security log. The claims of a refused message are
unproven (anyone on the broker can claim any host), so what is kept is
bounded: at most ``max_hosts`` claimed names between two flushes, written
to the catalogue (``agent_rejections``, itself bounded) by a periodic job.

A heartbeat refused only for its time (signing.ClockRejected: the seal is
valid) is genuine: it goes to the report recorder as a skew, so the agent
is listed ``skewed`` with its clock offset.
"""

import threading

from oslo_log import log as logging

from osbackup.db import rows
from osbackup import signing

LOG = logging.getLogger(__name__)

#: Claimed host names kept between two flushes.
MAX_HOSTS = 100
_NAME_MAX = 255


class Rejections:
    """Collects refused senders; ``flush()`` writes them."""

    def __init__(self, catalogue, recorder, max_hosts: int = MAX_HOSTS):
        self.catalogue = catalogue
        self.recorder = recorder
        self.max_hosts = max_hosts
        self._pending = {}
        self._lock = threading.Lock()

    def rejected(self, message: dict, seal, exc: Exception) -> None:
        """The VerifyingDispatcher's ``on_rejected`` hook."""
        method = message.get('method')
        args = message.get('args')
        args = args if isinstance(args, dict) else {}
        if isinstance(exc, signing.ClockRejected) and method == 'heartbeat':
            host, version, info = (args.get('host'), args.get('version'),
                                   args.get('info'))
            if isinstance(host, str) and isinstance(info, dict):
                self.recorder.skewed(host[:_NAME_MAX], version, info,
                                     exc.offset)
                return
        host = args.get('host')
        if not isinstance(host, str) and isinstance(seal, dict):
            host = seal.get('sender')
        if not isinstance(host, str) or not host:
            return
        host = host[:_NAME_MAX]
        now = rows.now()
        with self._lock:
            entry = self._pending.get(host)
            if entry is None:
                if len(self._pending) >= self.max_hosts:
                    return      # the log has them; the table stays bounded
                self._pending[host] = [exc.message, 1, now, now]
            else:
                entry[0], entry[3] = exc.message, now
                entry[1] += 1

    def flush(self) -> None:
        """Write what was collected since the last flush (periodic job)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            self.catalogue.record_rejections(
                {host: tuple(entry) for host, entry in pending.items()})
        except Exception:
            with self._lock:
                for host, entry in pending.items():
                    self._pending.setdefault(host, entry)
            raise
