"""The conductor's clock as this agent estimates it.

A task carries a deliver-by time in the conductor's clock; judging it
with this node's clock alone refuses every task on a node a few minutes
ahead ("refusing to run it late") and runs tasks late on a node behind.
Two kinds of evidence, both from signed messages:

* round trips (the agent's ``hello`` call, answered with the conductor's
  time): the conductor's clock minus ours lies within half the round trip
  of the midpoint; the median of the recent ones is the estimate;
* casts received (``iat`` of their seals): a cast waited in the queue
  for some time, so ``iat - received`` is only a lower bound of the
  offset. A stale cast (sent to a stopped agent, delivered after its
  restart) makes it much lower, so bounds only ever raise the estimate,
  never lower it: a task is never judged by a clock earlier than the
  conductor's, so it never runs late.

Without any round trip the estimate is this node's clock (raised by the
bounds).
"""

import collections
import statistics
import threading
import time

#: Samples of each kind kept (the most recent).
WINDOW = 15
#: Offsets below this are clocks in sync for the messages (seconds).
NEGLIGIBLE = 5.0


class ConductorClock:
    """Estimate of the conductor's clock minus this node's (seconds)."""

    def __init__(self, clock=time.time):
        self._clock = clock
        self._trips = collections.deque(maxlen=WINDOW)
        self._bounds = collections.deque(maxlen=WINDOW)
        self._lock = threading.Lock()

    def add_round_trip(self, sent: float, conductor_time: float,
                       received: float) -> None:
        """A call sent at ``sent``, answered with ``conductor_time``."""
        if received < sent or not isinstance(conductor_time, (int, float)):
            return      # our clock stepped back meanwhile: no evidence
        with self._lock:
            self._trips.append(conductor_time - (sent + received) / 2)

    def add_received(self, issued_at: int, received: float | None = None
                     ) -> None:
        """A signed cast issued at ``issued_at`` (conductor's seconds)."""
        received = self._clock() if received is None else received
        with self._lock:
            self._bounds.append(issued_at - received)

    def offset(self) -> float:
        """Seconds to add to this node's clock to read the conductor's."""
        with self._lock:
            estimate = statistics.median(self._trips) if self._trips \
                else 0.0
            if self._bounds:
                estimate = max(estimate, max(self._bounds))
            return estimate

    def now(self) -> float:
        """The conductor's time now, as far as this agent can tell."""
        return self._clock() + self.offset()

    def measured(self) -> bool:
        """Whether a round trip measured the offset."""
        with self._lock:
            return bool(self._trips)

    def apparent_skew(self) -> float | None:
        """This node's clock minus the conductor's, if it looks off.

        From round trips when there are any; otherwise from the casts'
        seals (a hint only: delivery delays count in). None when within
        NEGLIGIBLE seconds or unknown.
        """
        with self._lock:
            samples = self._trips or self._bounds
            if not samples:
                return None
            skew = -statistics.median(samples)
        return skew if abs(skew) >= NEGLIGIBLE else None


def is_expired(expires_at: float, clock: ConductorClock) -> bool:
    """Whether a deliver-by time (conductor's clock) has passed."""
    return clock.now() > expires_at
