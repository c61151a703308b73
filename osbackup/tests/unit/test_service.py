"""The threaded service runtime: periodic jobs in an outage (18.5)."""

import logging

import fixtures
from oslo_db import exception as db_exc

from osbackup import service
from osbackup.tests import base


class FailureStreakTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.log = self.useFixture(fixtures.FakeLogger(
            name='osbackup.service', level=logging.INFO))

    def test_one_line_per_outage_then_recovery(self):
        streak = service._FailureStreak('check-deadlines')
        down = db_exc.DBConnectionError(OSError('Connection refused'))
        for _ in range(30):
            streak.failed(down)
        streak.succeeded()
        lines = self.log.output.splitlines()
        self.assertEqual(2, len(lines), lines)
        self.assertIn('check-deadlines failed: the catalogue database is '
                      'unreachable (Connection refused)', lines[0])
        self.assertIn('check-deadlines works again after', lines[1])
        self.assertIn('(30 failed runs)', lines[1])
        self.assertNotIn('Traceback', self.log.output)

    def test_a_bug_keeps_its_traceback_once(self):
        streak = service._FailureStreak('prune')
        for _ in range(3):
            try:
                raise KeyError('x')
            except KeyError as exc:
                streak.failed(exc)
        self.assertEqual(1, self.log.output.count('Traceback'))

    def test_a_new_error_is_logged(self):
        streak = service._FailureStreak('prune')
        streak.failed(db_exc.DBConnectionError(OSError('refused')))
        streak.failed(db_exc.DBConnectionError(OSError('timed out')))
        self.assertIn('refused', self.log.output)
        self.assertIn('timed out', self.log.output)

    def test_timer_loop_uses_the_streak(self):
        calls = []

        def job():
            calls.append(1)
            if len(calls) < 4:
                raise db_exc.DBConnectionError(OSError('refused'))
            timer._stop.set()

        timer = service.PeriodicTimer(0, job, 'job')
        timer._loop()
        self.assertEqual(1, self.log.output.count('unreachable'))
        self.assertIn('works again', self.log.output)

    def test_timer_starts_and_stops_its_thread(self):
        ran = []
        timer = service.PeriodicTimer(0.01, lambda: ran.append(1), 'job')
        timer.start()
        self.addCleanup(timer.stop)
        for _ in range(500):
            if len(ran) >= 2:
                break
            timer._stop.wait(0.01)
        timer.stop()
        self.assertGreaterEqual(len(ran), 2)
        self.assertFalse(timer._thread.is_alive())
