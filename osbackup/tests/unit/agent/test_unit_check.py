"""The restore's unit check: all units watched in one settle window."""

import threading

import testtools

from osbackup.agent import unit_check


class FakeTime:
    def __init__(self):
        self.now = 100.0
        self.slept = 0.0

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds
        self.slept += seconds


class WaitSettledTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.time = FakeTime()

    def wait(self, units, is_active, settle=3, timeout=30):
        return unit_check.wait_settled(units, is_active, settle, timeout,
                                       clock=self.time.clock,
                                       sleep=self.time.sleep)

    def test_many_units_cost_one_settle_window(self):
        units = ['nova-api', 'nova-scheduler', 'nova-conductor',
                 'nova-novncproxy', 'nova-compute']
        result = self.wait(units, lambda unit: True)
        self.assertEqual({u: None for u in units}, result)
        self.assertEqual(units, list(result))
        # Five units settle together: one window, not five in a row.
        self.assertEqual(3.0, self.time.slept)

    def test_unit_up_late_settles_from_when_it_came_up(self):
        up_at = {'a': 100.0, 'b': 105.0}
        result = self.wait(['a', 'b'],
                           lambda unit: self.time.now >= up_at[unit])
        self.assertEqual({'a': None, 'b': None}, result)
        self.assertEqual(8.0, self.time.slept)

    def test_flapping_unit_restarts_its_window(self):
        # Active, dies at 101.5, back at 102: settles at 105.
        def is_active(unit):
            return not 101.5 <= self.time.now < 102
        self.assertEqual({'a': None}, self.wait(['a'], is_active))
        self.assertEqual(5.0, self.time.slept)

    def test_unit_never_active_fails_at_the_deadline_others_pass(self):
        result = self.wait(['ok', 'dead'], lambda unit: unit == 'ok',
                           settle=1, timeout=10)
        self.assertIsNone(result['ok'])
        self.assertEqual('did not stay active for 1 s within 10 s of its '
                         'start', result['dead'])
        self.assertEqual(10.0, self.time.slept)

    def test_no_settle_needs_no_wait(self):
        self.assertEqual({'a': None},
                         self.wait(['a'], lambda unit: True, settle=0))
        self.assertEqual(0.0, self.time.slept)

    def test_no_units(self):
        self.assertEqual({}, self.wait([], lambda unit: True))

    def test_last_poll_falls_when_the_window_closes(self):
        # Polls take 0.3 s each: the window still closes on time, not a
        # poll round later.
        def is_active(unit):
            self.time.now += 0.3 / 2
            return True
        self.assertEqual({'a': None, 'b': None},
                         self.wait(['a', 'b'], is_active, settle=1))
        self.assertLess(self.time.now - 100.0, 1.0 + 2 * 0.3 + 1e-9)

    def test_units_are_asked_together(self):
        both = threading.Barrier(2, timeout=5)

        def is_active(unit):
            both.wait()     # would time out if asked one after another
            return True
        self.assertEqual({'a': None, 'b': None},
                         self.wait(['a', 'b'], is_active, settle=0))
