"""The agent's estimate of the conductor's clock, and task expiry."""

from unittest import mock

import fixtures
import oslo_messaging as messaging
import testtools

from osbackup.agent import clock
from osbackup.agent import contact
from osbackup import signing


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


class ConductorClockTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.local = Clock(1000.0)
        self.clock = clock.ConductorClock(self.local)

    def test_no_evidence_is_the_local_clock(self):
        self.assertEqual(0.0, self.clock.offset())
        self.assertIsNone(self.clock.apparent_skew())
        self.assertFalse(self.clock.measured())

    def test_round_trips_give_the_median_midpoint(self):
        # This node 300 s ahead: the conductor answers 300 s earlier.
        for rtt in (0.02, 0.04, 3.0):
            self.clock.add_round_trip(1000.0, 700.0 + rtt / 2, 1000.0 + rtt)
        self.assertAlmostEqual(-300.0, self.clock.offset(), places=3)
        self.assertAlmostEqual(300.0, self.clock.apparent_skew(), places=3)
        self.assertTrue(self.clock.measured())

    def test_stale_cast_never_lowers_the_estimate(self):
        # Clocks in sync, then a cast delivered 60 s late (the agent was
        # stopped): the estimate stays, so the late task is refused.
        self.clock.add_round_trip(1000.0, 1000.01, 1000.02)
        self.clock.add_received(940, received=1000.0)
        self.assertAlmostEqual(0.0, self.clock.offset(), places=1)
        self.assertTrue(clock.is_expired(970.0, self.clock))

    def test_stale_cast_without_round_trip_uses_the_local_clock(self):
        self.clock.add_received(940, received=1000.0)
        self.assertEqual(0.0, self.clock.offset())
        self.assertTrue(clock.is_expired(970.0, self.clock))

    def test_casts_prove_a_conductor_ahead(self):
        # Casts issued at 1100 in the conductor's clock arrive at 1000:
        # the conductor is at least ~100 s ahead.
        self.clock.add_received(1100, received=1000.0)
        self.assertEqual(100.0, self.clock.offset())
        self.assertTrue(clock.is_expired(1050.0, self.clock))

    def test_agent_ahead_runs_a_task_still_deliverable(self):
        # Node 300 s ahead, task deliverable until conductor time 760.
        self.clock.add_round_trip(1000.0, 700.0, 1000.0)
        self.assertFalse(clock.is_expired(760.0, self.clock))
        self.local.now = 1061.0
        self.assertTrue(clock.is_expired(760.0, self.clock))

    def test_backwards_step_is_no_evidence(self):
        self.clock.add_round_trip(1000.0, 5.0, 999.0)
        self.clock.add_round_trip(1000.0, None, 1001.0)
        self.assertFalse(self.clock.measured())


class ContactTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.api = mock.Mock()
        self.clock = clock.ConductorClock()
        self.mono = Clock(0.0)
        self.contact = contact.ConductorContact(
            self.api, 'cmp', self.clock, 60, retry_interval=10,
            monotonic=self.mono)
        self.log = self.useFixture(fixtures.FakeLogger(
            name='osbackup.agent.contact'))

    def test_answer_measures_the_clock(self):
        self.api.hello.return_value = {'time': 12.0}
        self.assertTrue(self.contact.check())
        self.assertTrue(self.clock.measured())
        self.assertEqual('', self.log.output)

    def test_other_key_names_the_key_option(self):
        self.api.hello.side_effect = signing.MessageRejected(
            'signed with another key (key id abc)')
        self.assertFalse(self.contact.check())
        self.assertIn("The conductor does not accept this agent's messages "
                      '(signed with another key (key id abc)): check '
                      '[DEFAULT] rpc_signing_key_file', self.log.output)

    def test_silence_for_an_interval_names_the_key_option(self):
        self.api.hello.side_effect = messaging.MessagingTimeout()
        self.assertFalse(self.contact.check())
        # A conductor starting after the agent misses its first call.
        self.assertNotIn('ERROR', self.log.output)
        self.mono.now = 10
        self.contact.tick()
        self.assertEqual(2, self.api.hello.call_count)
        self.mono.now = 60
        self.contact.tick()
        self.assertIn("the conductor does not accept this agent's messages",
                      self.log.output)
        self.assertIn('rpc_signing_key_file', self.log.output)

    def test_errors_once_per_interval_and_answers_checked_less_often(self):
        self.api.hello.side_effect = signing.MessageRejected('unsigned')
        for now in (0, 10, 20, 30):
            self.mono.now = now
            self.contact.tick()
        self.assertEqual(4, self.api.hello.call_count)
        self.assertEqual(1, self.log.output.count('does not accept'))
        self.api.hello.side_effect = None
        self.api.hello.return_value = {'time': 1.0}
        self.mono.now = 40
        self.contact.tick()
        self.mono.now = 90
        self.contact.tick()     # answered: next call at 100
        self.assertEqual(5, self.api.hello.call_count)

    def test_clock_refusal_names_the_clock(self):
        self.api.hello.side_effect = signing.ClockRejected(
            'issued 300 s in the future: clock skew of +300 s', 300)
        self.contact.check()
        self.assertIn("check this node's clock (NTP)", self.log.output)
        self.api.hello.side_effect = None
        self.api.hello.return_value = {'time': 1.0}
        self.assertTrue(self.contact.check())
        self.assertIn('accepts this agent', self.log.output)

    def test_conductors_capped_below_hello_are_not_asked(self):
        self.api.can_hello.return_value = False
        self.assertTrue(self.contact.check())
        self.api.hello.assert_not_called()
