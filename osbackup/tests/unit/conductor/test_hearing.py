"""Deadlines pause while the conductor cannot hear; late successes count."""

import datetime
from unittest import mock

from oslo_utils import timeutils

from osbackup.conductor import hearing
from osbackup.db import api
from osbackup import states
from osbackup.tests import base
from osbackup.tests.unit.conductor import test_backups


class Clock:
    """A settable naive-UTC clock shared by the catalogue and Hearing."""

    def __init__(self):
        self.now = timeutils.utcnow()

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += datetime.timedelta(seconds=seconds)


class Link:
    """The probe and barrier of a conductor whose broker can go away."""

    def __init__(self):
        self.up = True
        self.written = True

    def probe(self):
        if not self.up:
            raise ConnectionError('broker unreachable')

    def barrier(self, timeout):
        return self.written


class HearingTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.clock = Clock()
        self.link = Link()
        self.hearing = hearing.Hearing(self.link.probe, self.link.barrier,
                                       max_gap=10, clock=self.clock)

    def test_nothing_is_heard_before_the_first_proof(self):
        self.assertIsNone(self.hearing.until)
        self.assertEqual(0, self.hearing.heard(self.clock.now -
                                               datetime.timedelta(hours=1)))
        self.link.written = False
        self.assertFalse(self.hearing.check())
        self.assertIsNone(self.hearing.until)

    def test_heard_time_skips_the_outage(self):
        start = self.clock.now
        for _ in range(4):              # 30 s heard
            self.assertTrue(self.hearing.check())
            self.clock.advance(10)
        self.clock.advance(-10)
        self.link.up = False
        for _ in range(11):             # 110 s deaf
            self.clock.advance(10)
            self.assertFalse(self.hearing.check())
        self.link.up = True
        for _ in range(3):              # 20 s heard again
            self.clock.advance(10)
            self.assertTrue(self.hearing.check())
        self.assertEqual(self.clock.now, self.hearing.until)
        self.assertEqual(50, self.hearing.heard(start))
        self.assertEqual(20, self.hearing.heard(
            start + datetime.timedelta(seconds=60)))

    def test_a_long_gap_between_proofs_is_not_heard(self):
        start = self.clock.now
        self.hearing.check()
        self.clock.advance(60)          # the timer stalled
        self.hearing.check()
        self.clock.advance(5)
        self.hearing.check()
        self.assertEqual(5, self.hearing.heard(start))

    def test_a_lagging_recorder_is_deafness(self):
        start = self.clock.now
        self.hearing.check()
        self.link.written = False
        self.clock.advance(5)
        self.assertFalse(self.hearing.check())
        self.link.written = True
        self.clock.advance(5)
        self.hearing.check()
        self.assertEqual(0, self.hearing.heard(start))


class OutageDeadlineTest(base.TestCase):
    """The tracker's deadline check across outages, on a real catalogue."""

    def setUp(self):
        super().setUp()
        self.clock = Clock()
        mock.patch.object(timeutils, 'utcnow', self.clock).start()
        self.cat = api.Catalogue('sqlite://')
        self.cat.sync()
        test_backups.wire_conductor(self)
        self.link = Link()
        self.tracker.hearing = hearing.Hearing(
            self.link.probe, self.link.barrier, max_gap=10, clock=self.clock)
        self.flags(task_start_timeout=60, task_silence_timeout=60,
                   group='conductor')
        self.cat.record_heartbeat('cmp', '1', {'drivers': ['nova']})
        self.backup = self.orch.create(['cmp'], ['nova'])
        (self.task,) = self.agent_api.sent
        self.cat.task_started(self.task['id'])

    def run_for(self, seconds, step=5):
        for _ in range(seconds // step):
            self.clock.advance(step)
            self.tracker.check_deadlines()

    def status(self):
        return self.cat.get_task(self.task['id'])['status']

    def test_broker_outage_longer_than_the_timeout_times_nothing_out(self):
        self.run_for(30)
        self.link.up = False
        self.run_for(110)
        self.link.up = True
        # Proven from 5 s to 30 s and again from 145 s: silent 55 s heard.
        self.run_for(35)
        self.assertEqual(states.RUNNING, self.status())
        self.run_for(10)
        self.assertEqual(states.TIMED_OUT, self.status())
        self.assertIn('went silent', self.cat.get_task(
            self.task['id'])['error'])

    def test_a_started_conductor_counts_from_its_first_proof(self):
        self.tracker.hearing = hearing.Hearing(
            self.link.probe, self.link.barrier, max_gap=10, clock=self.clock)
        self.clock.advance(300)     # the conductor was down
        self.link.written = False   # it is still writing the backlog
        self.run_for(20)
        self.link.written = True
        self.run_for(55)
        self.assertEqual(states.RUNNING, self.status())
        self.run_for(15)
        self.assertEqual(states.TIMED_OUT, self.status())

    def test_silent_agent_times_out_while_the_conductor_hears(self):
        self.run_for(70)
        self.assertEqual(states.TIMED_OUT, self.status())
        self.assertEqual(states.FAILED,
                         self.cat.get_backup(self.backup['id'])['status'])

    def test_late_success_is_recorded_and_the_backup_judged_again(self):
        self.run_for(70)
        self.assertEqual(states.FAILED,
                         self.cat.get_backup(self.backup['id'])['status'])
        result = {'artifacts': [{'name': 'nova', 'kind': 'files',
                                 'location': '/s/cmp/1/nova/nova.tar.zst',
                                 'size': 10, 'sha256': 'a' * 64}]}
        ended = self.cat.record_reports([
            ('finished', self.task['id'], (states.SUCCEEDED, result, None))])
        self.assertEqual([True], [t['late'] for t in ended])
        self.tracker.ended(ended)
        backup = self.cat.get_backup(self.backup['id'])
        self.assertEqual(states.SUCCEEDED, backup['status'])
        self.assertIsNone(backup['error'])
        self.assertEqual(states.SUCCEEDED, backup['tasks'][0]['status'])
        self.assertIsNone(backup['tasks'][0]['error'])
        (art,) = backup['artifacts']
        self.assertEqual((states.AVAILABLE, '/s/cmp/1/nova/nova.tar.zst'),
                         (art['status'], art['location']))
        # Repeated, it changes nothing; nor does a late failure elsewhere.
        self.assertEqual([], self.cat.record_reports([
            ('finished', self.task['id'], (states.SUCCEEDED, result, None))]))
        self.assertEqual(1, len(self.cat.get_backup(
            self.backup['id'])['artifacts']))

    def test_late_failure_changes_nothing(self):
        self.run_for(70)
        self.assertEqual([], self.cat.record_reports([
            ('finished', self.task['id'], (states.FAILED, {}, 'boom'))]))
        self.assertEqual(states.TIMED_OUT, self.status())

    def test_late_success_of_a_backup_being_deleted_deletes_it_again(self):
        self.run_for(70)
        pruner = mock.Mock()
        self.tracker.pruner = pruner
        self.cat.set_backup_status(self.backup['id'], states.DELETING)
        self.tracker.finished(self.task['id'], states.SUCCEEDED, {
            'artifacts': [{'name': 'nova', 'kind': 'files',
                           'location': '/s/x', 'size': 1,
                           'sha256': 'b' * 64}]}, None)
        pruner.delete.assert_called_once_with(self.backup['id'], force=True)
        self.assertEqual(1, len(self.cat.get_backup(
            self.backup['id'])['artifacts']))
