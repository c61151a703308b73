"""Backup orchestration without a broker: a recording agent API."""

import datetime
from unittest import mock

import oslo_messaging as messaging
from oslo_utils import timeutils

from osbackup.conductor import backups
from osbackup.conductor import dispatch
from osbackup.conductor import restores
from osbackup.conductor import tasks
from osbackup.db import api
from osbackup import exception
from osbackup import states
from osbackup.tests import base


class FakeAgentAPI:
    def __init__(self, unreachable=()):
        self.sent = []
        self.unreachable = unreachable

    def run_task(self, ctxt, host, task):
        if host in self.unreachable:
            raise messaging.MessageUndeliverable(Exception('no route'),
                                                 'osbackup', host, None)
        self.sent.append(task)


def wire_conductor(test) -> None:
    """Give ``test`` (with its ``cat``) a conductor's backup side.

    ``agent_api`` records the casts; ``orch`` and ``tracker`` are the
    BackupOrchestrator and TaskTracker, wired as the conductor wires them.
    """
    conf = test.cfg.conf
    test.agent_api = FakeAgentAPI()
    dispatcher = dispatch.Dispatcher(conf, test.cat, test.agent_api)
    test.orch = backups.BackupOrchestrator(conf, test.cat, dispatcher)
    test.tracker = tasks.TaskTracker(
        conf, test.cat, test.orch,
        restores.RestoreOrchestrator(conf, test.cat, dispatcher))
    dispatcher.on_failed = test.tracker.finished


class BackupOrchestratorTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.cat = api.Catalogue('sqlite://')
        self.cat.sync()
        wire_conductor(self)
        self.cat.record_heartbeat('ctl', '1', {'drivers': ['mysql', 'nova',
                                                           'swift']})
        self.cat.record_heartbeat('cmp', '1', {'drivers': ['nova']})

    def test_one_task_per_host_and_driver(self):
        backup = self.orch.create([], [])
        self.assertEqual(states.RUNNING, backup['status'])
        sent = sorted((t['host'], t['service']) for t in self.agent_api.sent)
        self.assertEqual([('cmp', 'nova'), ('ctl', 'mysql'), ('ctl', 'nova'),
                          ('ctl', 'swift')], sent)
        for task in self.agent_api.sent:
            self.assertEqual(backup['id'], task['backup_id'])
            self.assertIn('expires_at', task)
            self.assertEqual('backup', task['kind'])

    def test_results_close_the_backup(self):
        backup = self.orch.create(['cmp'], ['nova'])
        (task,) = self.agent_api.sent
        self.tracker.finished(task['id'], states.SUCCEEDED, {
            'artifacts': [{'name': 'nova', 'kind': 'files', 'location': '/x',
                           'size': 1, 'sha256': 'f' * 64}]}, None)
        self.assertEqual(states.SUCCEEDED,
                         self.cat.get_backup(backup['id'])['status'])

    def test_service_without_driver_on_host_is_skipped(self):
        backup = self.orch.create(['cmp'], ['mysql'])
        self.assertEqual([], self.agent_api.sent)
        self.assertEqual(states.SUCCEEDED, backup['status'])
        self.assertEqual(states.SKIPPED, backup['tasks'][0]['status'])

    def test_unknown_service_and_host_are_refused(self):
        err = self.assertRaises(exception.InvalidInput, self.orch.create,
                                [], ['nosuch'])
        self.assertIn("Unknown service 'nosuch'", err.message)
        self.assertRaises(exception.InvalidInput, self.orch.create,
                          [], ['../etc'])
        err = self.assertRaises(exception.InvalidInput, self.orch.create,
                                ['ghost'], [])
        self.assertIn("Unknown host 'ghost'", err.message)
        self.assertEqual([], self.cat.list_backups())

    def test_down_agent_is_refused_when_named(self):
        self.flags(agent_down_time=1, group='conductor')
        later = timeutils.utcnow() + datetime.timedelta(seconds=30)
        with mock.patch.object(timeutils, 'utcnow', return_value=later):
            err = self.assertRaises(exception.InvalidInput, self.orch.create,
                                    ['cmp'], [])
            self.assertIn('down', err.message)
            err = self.assertRaises(exception.InvalidInput, self.orch.create,
                                    [], [])
            self.assertIn('No agent is up', err.message)

    def test_undeliverable_cast_fails_the_task_at_once(self):
        self.agent_api.unreachable = ('cmp',)
        backup = self.orch.create(['cmp'], [])
        self.assertEqual(states.FAILED, backup['status'])
        self.assertIn('not listening', backup['tasks'][0]['error'])

    def test_deadline_check_closes_backup(self):
        self.flags(task_start_timeout=1, group='conductor')
        backup = self.orch.create(['cmp'], [])
        later = timeutils.utcnow() + datetime.timedelta(seconds=5)
        with mock.patch.object(timeutils, 'utcnow', return_value=later):
            self.tracker.check_deadlines()
        shown = self.cat.get_backup(backup['id'])
        self.assertEqual(states.FAILED, shown['status'])
        self.assertEqual(states.TIMED_OUT, shown['tasks'][0]['status'])

    def test_fast_report_does_not_close_a_backup_early(self):
        seen = []

        def instant(ctxt, host, task):
            self.agent_api.sent.append(task)
            backup = self.cat.get_backup(task['backup_id'])
            # Every task of the wave exists before the first cast.
            seen.append(len(backup['tasks']))
            self.tracker.finished(task['id'], states.SUCCEEDED,
                                  {'artifacts': []}, None)
            if len(self.agent_api.sent) == 1:
                self.assertEqual(states.RUNNING, self.cat.get_backup(
                    task['backup_id'])['status'])

        self.agent_api.run_task = instant
        backup = self.orch.create([], [])
        self.assertEqual([4, 4, 4, 4], seen)
        self.assertEqual(states.SUCCEEDED,
                         self.cat.get_backup(backup['id'])['status'])

    def test_previous_size_is_sent_for_the_space_check(self):
        first = self.orch.create(['cmp'], ['nova'])
        (task,) = self.agent_api.sent
        self.assertNotIn('expected_bytes', task['params'])
        self.tracker.finished(task['id'], states.SUCCEEDED, {
            'artifacts': [{'name': 'nova', 'kind': 'files', 'location': '/x',
                           'size': 4096, 'sha256': 'f' * 64}]}, None)
        self.assertEqual(states.SUCCEEDED,
                         self.cat.get_backup(first['id'])['status'])
        self.orch.create(['cmp'], ['nova'])
        self.assertEqual(4096, self.agent_api.sent[-1]['params'][
            'expected_bytes'])
