"""A small threaded service runtime: start, periodic jobs, clean stop.

osbackup runs without eventlet. Each daemon is one process with a few
threads (RPC server, periodic timers, a worker pool); SIGTERM and SIGINT
set an event and every service is stopped in reverse order. Agents run a
single worker (their RPC queue is per host), conductors scale by running
more processes, so a multi-process launcher would add nothing.

Every step of a stop is bounded, so SIGTERM ends a daemon within seconds
in any state (systemd would otherwise wait its stop timeout and kill it):
a signal during start-up (a broker that cannot be reached blocks it)
interrupts the start; periodic jobs and the RPC server get a few seconds
each; threads still alive after that do not keep the process (see
exit_after).
"""

import os
import signal
import sys
import threading
import time

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

#: Longest wait for a periodic job in progress when stopping (seconds):
#: a job stuck on an unreachable broker or database must not hold up a
#: SIGTERM; its thread is a daemon and ends with the process.
STOP_WAIT = 2
#: Longest wait for the RPC server to stop (seconds): with the broker
#: gone, oslo.messaging's listener keeps reconnecting meanwhile.
SERVER_STOP_WAIT = 3
#: Longest wait at exit for threads that are not daemons (seconds).
EXIT_WAIT = 2


class StartInterrupted(BaseException):
    """SIGTERM or SIGINT arrived while the services were starting."""


class PeriodicTimer:
    """Call ``func`` every ``interval`` seconds in a daemon thread."""

    def __init__(self, interval: float, func, name: str,
                 initial_delay: float = 0):
        self.interval = interval
        self.func = func
        self.name = name
        self.initial_delay = initial_delay
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name,
                                        daemon=True)

    def _loop(self):
        if self._stop.wait(self.initial_delay):
            return
        streak = _FailureStreak(self.name)
        while True:
            try:
                self.func()
            except Exception as exc:
                streak.failed(exc)
            else:
                streak.succeeded()
            if self._stop.wait(self.interval):
                return

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread.is_alive() and \
                self._thread is not threading.current_thread():
            self._thread.join(timeout=min(self.interval + 5, STOP_WAIT))


class _FailureStreak:
    """Log a periodic job's failures once per outage, and its recovery.

    A job runs every few seconds: while the catalogue is down the same
    error would otherwise fill the log with a traceback per run.
    """

    def __init__(self, name: str):
        self.name = name
        self.since = None
        self.count = 0
        self.last = None

    def failed(self, exc: Exception) -> None:
        from oslo_db import exception as db_exc

        from osbackup.db import engine
        kind = (type(exc), str(exc))
        self.count += 1
        if self.since is None:
            self.since = time.monotonic()
        if kind == self.last:
            LOG.debug('Periodic job %s failed again: %s', self.name, exc)
            return
        self.last = kind
        if isinstance(exc, db_exc.DBConnectionError):
            # An outage, not a bug: its reason is enough.
            LOG.error('Periodic job %s failed: the catalogue database is '
                      'unreachable (%s); retrying quietly until it is back',
                      self.name, engine.reason(exc))
        else:
            LOG.exception('Periodic job %s failed (further identical '
                          'failures are logged at debug level)', self.name)

    def succeeded(self) -> None:
        if self.since is not None:
            LOG.info('Periodic job %s works again after %d s (%d failed '
                     'runs)', self.name, time.monotonic() - self.since,
                     self.count)
        self.since = self.last = None
        self.count = 0


class Service:
    """Base: start() starts the threads, stop() ends them."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class RPCService(Service):
    """An RPC server plus periodic timers, stopped in the right order."""

    def __init__(self):
        self.server = None
        self.timers = []

    def start_rpc(self, server, pool_size: int | None = None) -> None:
        self.server = server
        self.server.start(override_pool_size=pool_size)

    def add_timer(self, interval: float, func, name: str) -> None:
        timer = PeriodicTimer(interval, func, name)
        timer.start()
        self.timers.append(timer)

    def stop(self) -> None:
        for timer in self.timers:
            timer.stop()
        if self.server is not None:
            server, self.server = self.server, None
            if not _within(SERVER_STOP_WAIT,
                           lambda: (server.stop(), server.wait())):
                LOG.warning('The RPC server did not stop within %d s (is '
                            'the broker reachable?); stopping anyway',
                            SERVER_STOP_WAIT)


def _within(timeout: float, func) -> bool:
    """Run ``func`` in a daemon thread; whether it ended in ``timeout`` s."""
    worker = threading.Thread(target=func, name='bounded-stop', daemon=True)
    worker.start()
    worker.join(timeout)
    return not worker.is_alive()


def run(services: list) -> None:
    """Start services and block until SIGTERM or SIGINT, then stop them."""
    stop = threading.Event()
    starting = [True]

    def _signal(signum, _frame):
        LOG.info('Caught signal %d, stopping', signum)
        stop.set()
        if starting[0]:
            # A start blocked on the broker would never see the event.
            starting[0] = False
            raise StartInterrupted()

    signal.signal(signal.SIGTERM, _signal)
    signal.signal(signal.SIGINT, _signal)
    started = []
    try:
        try:
            for svc in services:
                svc.start()
                started.append(svc)
            starting[0] = False
        except StartInterrupted:
            LOG.warning('Stopped while starting (%s was not started)',
                        type(services[len(started)]).__name__)
            return
        while not stop.wait(3600):
            pass
    finally:
        for svc in reversed(started):
            try:
                svc.stop()
            except Exception:
                LOG.exception('Error stopping %s', svc)
    LOG.info('Stopped')


def exit_after(code: int = 0) -> None:
    """Exit now, even if threads that are not daemons still run.

    oslo.messaging's and the executors' threads can be stuck on a broker
    that is gone; the interpreter would wait for them at exit for ever.
    """
    deadline = time.monotonic() + EXIT_WAIT
    for thread in threading.enumerate():
        if thread is threading.main_thread() or thread.daemon:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threading.enumerate()
             if t is not threading.main_thread() and not t.daemon
             and t.is_alive()]
    if stuck:
        LOG.info('Threads still running at exit (%s); exiting anyway',
                 ', '.join(stuck))
    sys.stdout.flush()
    sys.stderr.flush()
    import logging as std_logging
    std_logging.shutdown()
    os._exit(code)
