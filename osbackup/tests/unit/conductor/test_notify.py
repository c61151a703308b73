"""Conductor notifications: events, versioned payloads, agent.down."""

import datetime
import logging
from unittest import mock

import fixtures
from oslo_utils import timeutils

from osbackup.conductor import notify
from osbackup.db import api
from osbackup.db import rows
from osbackup import states
from osbackup import task_log
from osbackup.tests import base
from osbackup.tests.unit.conductor import test_backups


class RecordingNotifier:
    """Stands in for oslo_messaging.Notifier: records what is sent."""

    def __init__(self, fail=False):
        self.sent = []
        self.fail = fail

    def _send(self, priority, ctxt, event_type, payload):
        if self.fail:
            raise OSError('broker gone')
        self.sent.append((priority, event_type, payload))

    def info(self, ctxt, event_type, payload):
        self._send('INFO', ctxt, event_type, payload)

    def error(self, ctxt, event_type, payload):
        self._send('ERROR', ctxt, event_type, payload)

    def events(self):
        return [e for _p, e, _d in self.sent]

    def data(self, event_type):
        for _p, e, payload in self.sent:
            if e == event_type:
                return payload['osbackup_object.data']
        raise KeyError(event_type)


class PayloadTest(base.TestCase):

    def test_versioned_like_nova(self):
        prim = notify.BackupPayload(id=3, status='SUCCEEDED').to_primitive()
        self.assertEqual('BackupPayload', prim['osbackup_object.name'])
        self.assertEqual('osbackup', prim['osbackup_object.namespace'])
        self.assertEqual('1.0', prim['osbackup_object.version'])
        self.assertEqual(set(notify.BackupPayload.FIELDS),
                         set(prim['osbackup_object.data']))
        self.assertRaises(TypeError, notify.BackupPayload, nosuch=1)

    def test_disabled_without_a_driver(self):
        notifications = notify.Notifications(self.cfg.conf)
        self.assertFalse(notifications.enabled)
        notifications.backup_started({'id': 1, 'status': 'RUNNING'})

    def test_a_failing_broker_costs_a_warning_not_the_operation(self):
        notifications = notify.Notifications(
            self.cfg.conf, RecordingNotifier(fail=True))
        notifications.backup_started({'id': 1, 'status': 'RUNNING'})


class BackupEventsTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.cat = api.Catalogue('sqlite://')
        self.cat.sync()
        test_backups.wire_conductor(self)
        self.notifier = RecordingNotifier()
        self.orch.notifications = notify.Notifications(self.cfg.conf,
                                                       self.notifier)
        self.cat.record_heartbeat('ctl', '1', {'drivers': ['mysql', 'nova']})

    def finish(self, status):
        for task in self.agent_api.sent:
            self.tracker.finished(task['id'], status, {
                'artifacts': [{'name': task['service'], 'kind': 'files',
                               'location': '/x', 'size': 7,
                               'sha256': 'f' * 64}]},
                None if status == states.SUCCEEDED else 'dump failed')

    def test_start_and_end(self):
        backup = self.orch.create(['ctl'], [])
        self.assertEqual(['backup.create.start'], self.notifier.events())
        self.finish(states.SUCCEEDED)
        self.assertEqual(['backup.create.start', 'backup.create.end'],
                         self.notifier.events())
        end = self.notifier.data('backup.create.end')
        self.assertEqual((backup['id'], 'SUCCEEDED', ['ctl'], 14, 2),
                         (end['id'], end['status'], end['hosts'],
                          end['size'], end['artifact_count']))
        self.assertIsNotNone(end['duration'])

    def test_every_task_end_is_logged_once_at_info(self):
        logs = self.useFixture(fixtures.FakeLogger(
            name='osbackup.conductor.tasks', level=logging.INFO))
        backup = self.orch.create(['ctl'], [])
        self.finish(states.SUCCEEDED)
        lines = [line for line in logs.output.splitlines() if 'ended' in line]
        self.assertEqual(2, len(lines), logs.output)
        self.assertIn('ended SUCCEEDED: backup mysql on ctl (backup %s), '
                      '7 bytes' % backup['id'], logs.output)

    def test_error(self):
        self.orch.create(['ctl'], ['mysql'])
        self.finish(states.FAILED)
        priority, event, payload = self.notifier.sent[-1]
        self.assertEqual(('ERROR', 'backup.create.error'), (priority, event))
        self.assertIn('1 of 1 tasks', payload['osbackup_object.data']
                      ['error'])


class TaskLogTest(base.TestCase):

    def test_names_and_sizes(self):
        self.assertEqual('verify verify-3 on h1 (verification 3)',
                         task_log.describe({'kind': 'verify', 'host': 'h1',
                                            'service': 'verify-3',
                                            'verification_id': 3}))
        self.assertEqual('restore_load_db restore on h1 (restore 9)',
                         task_log.describe({'kind': 'restore_load_db',
                                            'host': 'h1',
                                            'service': 'restore',
                                            'params': {'restore_id': 9}}))
        self.assertEqual(12, task_log.stored_bytes(
            {'artifacts': [{'size': 5}, {'size': 7}, {'size': None}]}))
        self.assertEqual(0, task_log.stored_bytes(None))
        self.assertEqual(90.0, rows.seconds_between(
            '2026-12-02T10:00:00Z', '2026-12-02T10:01:30Z'))
        self.assertIsNone(rows.seconds_between(None, 'x'))


class AgentWatchTest(base.TestCase):

    def test_down_once_when_seen_going_down(self):
        cat = api.Catalogue('sqlite://')
        cat.sync()
        cat.record_heartbeat('h1', '1', {'services': ['nova']})
        notifier = RecordingNotifier()
        watch = notify.AgentWatch(cat, notify.Notifications(
            self.cfg.conf, notifier), down_after=60)
        watch.check()
        later = timeutils.utcnow() + datetime.timedelta(seconds=120)
        with mock.patch.object(timeutils, 'utcnow', return_value=later):
            watch.check()
            watch.check()
        self.assertEqual(['agent.down'], notifier.events())
        self.assertEqual('h1', notifier.data('agent.down')['host'])
        self.assertEqual(('ERROR',), tuple({p for p, _e, _d in
                                            notifier.sent}))
