"""A bounded first connection to the message broker, for osbackup-manage.

oslo.messaging retries a broker connection forever: an RPC call opens its
reply queue's connection with no retry limit, so a wrong
``transport_url`` would hang the command. The CLI first opens one
connection through the transport's own pool, in a thread it stops waiting
for after ``[manage] broker_timeout``; the call then reuses it.
"""

import logging
import re
import threading

from osbackup import exception

#: The rabbit driver logs each failed attempt here, reason first.
_DRIVER_LOGGER = 'oslo.messaging._drivers.impl_rabbit'
_CREDENTIALS = re.compile(r'(://|,)([^:@/,]*):[^@/,]*@')


def mask_url(url: str) -> str:
    """``url`` with every password replaced by ``***``."""
    return _CREDENTIALS.sub(r'\1\2:***@', url or '')


class _LastError(logging.Handler):
    """Remember the reason of the driver's latest failed attempt."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.reason = None

    def emit(self, record):
        if record.msg.startswith('Connection failed') and record.args:
            self.reason = record.args[0]


def connect(transport, url: str, timeout: float) -> None:
    """Open a pooled connection within ``timeout`` seconds or raise.

    Drivers without a connection pool (the in-memory one) connect
    nothing and return at once. Raises ConductorUnavailable naming the
    broker (password masked) and the last reason the driver saw.
    """
    driver = getattr(transport, '_driver', None)
    get_connection = getattr(driver, '_get_connection', None)
    if get_connection is None:
        return
    connected = threading.Event()
    failure = []

    def _connect():
        try:
            with get_connection():
                connected.set()
        except Exception as exc:
            failure.append(exc)
            connected.set()

    # The driver logs a line per attempt, every few seconds: keep the
    # reason, print none of them.
    log = logging.getLogger(_DRIVER_LOGGER)
    saved = log.level, log.propagate
    last = _LastError()
    log.addHandler(last)
    log.setLevel(logging.ERROR)
    log.propagate = False
    try:
        threading.Thread(target=_connect, name='broker-connect',
                         daemon=True).start()
        connected.wait(timeout)
    finally:
        log.removeHandler(last)
        if connected.is_set():
            log.setLevel(saved[0])
            log.propagate = saved[1]
        # Otherwise the thread goes on retrying until the command exits:
        # its attempts stay silent.
    if connected.is_set() and not failure:
        return
    if failure:
        when, reason = '', failure[0]
    else:
        when, reason = ' within %d s' % timeout, last.reason
    raise exception.ConductorUnavailable(
        'Cannot connect to the message broker %s%s%s: check transport_url '
        'and that the broker runs' % (mask_url(url), when,
                                      ' (%s)' % reason if reason else ''))
