"""When this conductor could hear its agents: the clock deadlines run on.

A task times out when its agent has been silent too long. Silence only
means something while the conductor can hear: during a broker outage no
agent can report, and a conductor that has just started has not read the
reports queued for it yet. Deadlines therefore count *heard* time only.

The conductor proves it hears with a round trip through its own report
queue (``probe``: an RPC call on the shared conductor topic, answered by
whichever conductor consumes that queue) followed by a barrier on its
report recorder (``barrier``: every report received so far is written to
the catalogue). The queue is first in, first out, so once the call sent at
time S is answered and the barrier passed, every report an agent cast
before S is in the catalogue, by this conductor or another. Successive
proofs close enough together (``max_gap``) make a heard span; a failed
proof, or a gap longer than that (a stalled timer, an outage between two
proofs), ends it. A conductor that has just started has no span at all:
nothing can time out before the queue was drained and then a full timeout
has been heard.

The spans are per process and kept in memory: each conductor decides only
from what it heard itself, and several conductors sharing a catalogue
stay safe because every expiry is compare-and-set.
"""

import datetime
import threading
import typing

from oslo_log import log as logging

from osbackup.db import rows

LOG = logging.getLogger(__name__)

#: Spans kept at most; older ones are dropped (their time then counts
#: as unheard, which only delays a deadline).
MAX_SPANS = 1000


class Hearing:
    """Heard spans of this conductor, proven by ``probe`` and ``barrier``.

    ``probe()`` raises when the round trip fails; ``barrier(timeout)``
    returns whether what was received before the call is written.
    """

    def __init__(self, probe: typing.Callable[[], None],
                 barrier: typing.Callable[[float], bool],
                 max_gap: float, barrier_timeout: float = 10.0,
                 clock: typing.Callable[[], datetime.datetime] = rows.now):
        self._probe = probe
        self._barrier = barrier
        self.max_gap = datetime.timedelta(seconds=max_gap)
        self.barrier_timeout = barrier_timeout
        self._clock = clock
        self._spans: list[list[datetime.datetime]] = []
        self._lock = threading.Lock()
        self._deaf_since = None
        self._hearing = False

    # -- proving -------------------------------------------------------

    def check(self) -> bool:
        """Prove that this conductor hears now; return whether it does."""
        sent = self._clock()
        try:
            self._probe()
            if not self._barrier(self.barrier_timeout):
                raise TimeoutError('the report recorder is %.0f s or more '
                                   'behind' % self.barrier_timeout)
        except Exception as exc:
            self._deaf(sent, exc)
            return False
        self._heard(sent)
        return True

    def _deaf(self, at, exc):
        with self._lock:
            was = self._hearing
            self._hearing = False
            if self._deaf_since is None:
                self._deaf_since = at
        if was or self._deaf_since == at:
            LOG.warning('The conductor cannot prove it hears its agents '
                        '(%s); task deadlines are paused until it does',
                        exc)

    def _heard(self, sent):
        with self._lock:
            last = self._spans[-1] if self._spans else None
            if self._hearing and last is not None and \
                    sent - last[1] <= self.max_gap:
                last[1] = max(last[1], sent)
            else:
                self._spans.append([sent, sent])
                del self._spans[:-MAX_SPANS]
            resumed = not self._hearing
            self._hearing = True
            deaf_since, self._deaf_since = self._deaf_since, None
        if resumed:
            if deaf_since is None:
                LOG.info('The conductor has read the reports queued for it; '
                         'task deadlines count from now')
            else:
                LOG.warning('The conductor hears its agents again after '
                            '%.0f s; task deadlines resume, extended by the '
                            'time it could not hear',
                            (sent - deaf_since).total_seconds())

    # -- reading -------------------------------------------------------

    @property
    def until(self) -> datetime.datetime | None:
        """The latest time everything sent before is known, or None."""
        with self._lock:
            return self._spans[-1][1] if self._spans else None

    def heard(self, since: datetime.datetime) -> float:
        """Seconds this conductor heard from ``since`` to ``until``."""
        total = datetime.timedelta()
        with self._lock:
            for start, end in self._spans:
                if end > since:
                    total += end - max(start, since)
        return total.total_seconds()
