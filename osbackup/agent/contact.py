"""Whether a conductor accepts this agent's messages, and its clock.

Heartbeats are casts: an agent whose key is missing or wrong sends them
into a void, and the conductor refuses each one in its own log only. So
the agent also makes a signed call (``hello``) at start and every
``[agent] conductor_check_interval`` seconds (every heartbeat interval
while it has no answer). An answer proves a conductor verified the seal,
and carries the conductor's time for the clock estimate (agent/clock.py).
A refusal is logged at ERROR, once per interval, naming what to check; so
is a silence lasting a whole interval (a conductor starting after the
agent does not answer its very first call).
"""

import time

from oslo_log import log as logging
import oslo_messaging as messaging

from osbackup import rpc
from osbackup import signing

LOG = logging.getLogger(__name__)

#: Longest wait for a conductor's answer (seconds).
CALL_TIMEOUT = 5.0


class ConductorContact:
    """One ``check()`` per interval (a periodic job of the agent)."""

    def __init__(self, conductor_api, host: str, clock, interval: float,
                 retry_interval: float | None = None,
                 monotonic=time.monotonic):
        self.api = conductor_api
        self.host = host
        self.clock = clock
        self.interval = interval
        #: How often check() is called (the periodic job's interval).
        self.retry_interval = min(interval, retry_interval or interval)
        self.timeout = min(CALL_TIMEOUT, self.retry_interval)
        self._monotonic = monotonic
        #: Whether the last check was answered (None before the first).
        self.accepted = None
        self._next_call = 0.0
        self._unanswered_since = None
        self._last_error = None

    def tick(self) -> None:
        """The periodic job: check when due (sooner while unanswered)."""
        if self._monotonic() >= self._next_call:
            self.check()

    def check(self) -> bool:
        """Call a conductor; log why not when it does not answer."""
        if not self.api.can_hello():
            return True     # capped below 1.4 for a rolling upgrade
        now = self._monotonic()
        self._next_call = now + self.retry_interval
        if self._unanswered_since is None:
            self._unanswered_since = now
        sent = time.time()
        try:
            reply = self.api.hello(rpc.admin_context(), self.host,
                                   self.timeout)
        except signing.MessageRejected as exc:
            self._refused(exc.message)
        except messaging.MessagingTimeout:
            if now - self._unanswered_since >= self.interval:
                self._refused(None)
            else:
                self.accepted = False
                LOG.warning("No conductor answered this agent's signed call "
                            'within %.0f s; trying again in %.0f s',
                            self.timeout, self.retry_interval)
        except Exception as exc:
            # The broker itself is away: said once, reconnects log more.
            if self.accepted is not False:
                LOG.warning('Cannot check that a conductor accepts this '
                            "agent's messages: %s", exc)
            self.accepted = False
        else:
            if isinstance(reply, dict):
                self.clock.add_round_trip(sent, reply.get('time'),
                                          time.time())
            if self.accepted is False:
                LOG.info("A conductor accepts this agent's messages")
            self.accepted = True
            self._next_call = now + self.interval
            self._unanswered_since = self._last_error = None
        return bool(self.accepted)

    def _refused(self, reason: str | None) -> None:
        self.accepted = False
        now = self._monotonic()
        if self._last_error is not None and \
                now - self._last_error < self.interval:
            LOG.debug('Still not accepted by a conductor: %s', reason)
            return
        self._last_error = now
        if reason is None:
            LOG.error("No conductor answered this agent's signed call "
                      'within %.0f s: the conductor does not accept this '
                      "agent's messages, or none is running: check [DEFAULT] "
                      'rpc_signing_key_file (the same key on the conductor '
                      'and every agent)', self.timeout)
        elif 'clock' in reason:
            LOG.error("The conductor does not accept this agent's messages "
                      "(%s): check this node's clock (NTP)", reason)
        else:
            LOG.error("The conductor does not accept this agent's messages "
                      '(%s): check [DEFAULT] rpc_signing_key_file (the same '
                      'key on the conductor and every agent)', reason)
