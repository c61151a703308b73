"""Catalogue API on an in-memory SQLite database."""

import datetime
from unittest import mock

from oslo_utils import timeutils

from osbackup.db import api
from osbackup import exception
from osbackup import states
from osbackup.tests import base


def _artifact(name='nova'):
    return {'name': name, 'kind': 'files', 'location': '/s/%s' % name,
            'size': 10, 'sha256': 'a' * 64, 'meta': {}}


class CatalogueTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.cat = api.Catalogue('sqlite://')
        self.cat.sync()

    def _task(self, backup_id, host='h1', service='nova', timeout=3600):
        return self.cat.create_task('backup', host, service, {}, timeout,
                                    backup_id=backup_id)

    def test_schema_check_before_sync(self):
        fresh = api.Catalogue('sqlite://')
        err = self.assertRaises(exception.OsbackupError, fresh.check_schema)
        self.assertIn('db sync', err.message)
        fresh.sync()
        fresh.check_schema()

    def test_heartbeat_upsert_and_down_state(self):
        self.cat.record_heartbeat('h1', '1.0', {'drivers': ['nova']})
        self.cat.record_heartbeat('h1', '1.1', {'drivers': ['nova', 'mysql']})
        agents = self.cat.list_agents(down_after=60)
        self.assertEqual(1, len(agents))
        self.assertEqual(('h1', states.UP, '1.1'),
                         (agents[0]['host'], agents[0]['state'],
                          agents[0]['version']))
        later = timeutils.utcnow() + datetime.timedelta(seconds=120)
        with mock.patch.object(timeutils, 'utcnow', return_value=later):
            self.assertEqual(states.DOWN,
                             self.cat.list_agents(down_after=60)[0]['state'])

    def test_task_lifecycle_records_artifacts_once(self):
        backup = self.cat.create_backup(['h1'], [])
        task = self._task(backup['id'])
        self.assertTrue(self.cat.task_started(task['id']))
        self.assertFalse(self.cat.task_started(task['id']))
        self.assertTrue(self.cat.task_progress(task['id'], 100, 2))
        result = {'artifacts': [_artifact()]}
        self.assertIsNotNone(self.cat.task_finished(
            task['id'], states.SUCCEEDED, result))
        # A redelivered report changes nothing.
        self.assertIsNone(self.cat.task_finished(
            task['id'], states.SUCCEEDED, result))
        self.assertIsNone(self.cat.task_finished(
            task['id'], states.FAILED, {}, 'late'))
        self.assertEqual(states.SUCCEEDED,
                         self.cat.finish_backup_if_done(backup['id']))
        shown = self.cat.get_backup(backup['id'])
        self.assertEqual(1, len(shown['artifacts']))
        self.assertEqual(states.AVAILABLE, shown['artifacts'][0]['status'])
        self.assertEqual(states.SUCCEEDED, shown['status'])
        self.assertEqual(100, shown['tasks'][0]['progress_bytes'])

    def test_backup_stays_running_until_all_tasks_end(self):
        backup = self.cat.create_backup(['h1', 'h2'], [])
        t1 = self._task(backup['id'])
        t2 = self._task(backup['id'], host='h2')
        self.cat.task_finished(t1['id'], states.SUCCEEDED,
                               {'artifacts': [_artifact()]})
        self.assertIsNone(self.cat.finish_backup_if_done(backup['id']))
        self.cat.task_finished(t2['id'], states.FAILED, {}, 'disk full')
        self.assertEqual(states.FAILED,
                         self.cat.finish_backup_if_done(backup['id']))
        shown = self.cat.get_backup(backup['id'])
        self.assertIn('1 of 2', shown['error'])

    def test_skipped_task_counts_as_good_and_is_listed(self):
        backup = self.cat.create_backup(['h1'], [])
        t1 = self._task(backup['id'])
        t2 = self._task(backup['id'], service='swift')
        self.cat.task_finished(t1['id'], states.SUCCEEDED,
                               {'artifacts': [_artifact()]})
        self.cat.task_finished(t2['id'], states.SKIPPED,
                               {'reason': 'swift is not present'})
        self.assertEqual(states.SUCCEEDED,
                         self.cat.finish_backup_if_done(backup['id']))
        arts = {a['service']: a for a in
                self.cat.get_backup(backup['id'])['artifacts']}
        self.assertEqual(states.ARTIFACT_SKIPPED, arts['swift']['status'])
        self.assertIsNone(arts['swift']['location'])
        listed = self.cat.list_backups()[0]
        self.assertEqual(1, listed['artifact_count'])
        self.assertEqual(10, listed['size'])

    def test_expire_pending_and_silent_tasks(self):
        backup = self.cat.create_backup(['h1'], [])
        pending = self._task(backup['id'])
        running = self._task(backup['id'], service='glance')
        fresh = self._task(backup['id'], service='keystone')
        self.cat.task_started(running['id'])
        self.cat.task_started(fresh['id'])
        later = timeutils.utcnow() + datetime.timedelta(seconds=200)
        with mock.patch.object(timeutils, 'utcnow', return_value=later):
            self.cat.task_progress(fresh['id'], 1, 1)
            expired = self.cat.expire_tasks(start_timeout=120,
                                            silence_timeout=150)
        self.assertEqual({pending['id'], running['id']},
                         {t['id'] for t in expired})
        tasks = {t['id']: t for t in
                 self.cat.get_backup(backup['id'])['tasks']}
        self.assertEqual(states.TIMED_OUT, tasks[pending['id']]['status'])
        self.assertIn('did not start', tasks[pending['id']]['error'])
        self.assertIn('went silent', tasks[running['id']]['error'])
        self.assertEqual(states.RUNNING, tasks[fresh['id']]['status'])
        # A failure arriving after the timeout changes nothing; a success
        # is recorded: its artifact is complete (see the outage tests).
        self.assertIsNone(self.cat.task_finished(
            running['id'], states.FAILED, {}, 'late'))
        self.assertEqual([], self.cat.get_backup(backup['id'])['artifacts'])
        late = self.cat.task_finished(
            running['id'], states.SUCCEEDED, {'artifacts': [_artifact()]})
        self.assertTrue(late['late'])
        self.assertEqual(1, len(self.cat.get_backup(
            backup['id'])['artifacts']))
        self.assertIsNone(self.cat.task_finished(
            pending['id'], states.FAILED, {}, 'late'))

    def test_unknown_backup(self):
        self.assertRaises(exception.NotFound, self.cat.get_backup, 42)

    def test_task_ended_without_start_report_gets_a_start_time(self):
        backup = self.cat.create_backup(['h1'], [])
        quick = self._task(backup['id'])
        batched = self._task(backup['id'], service='glance')
        self.cat.task_finished(quick['id'], states.SUCCEEDED,
                               {'artifacts': [_artifact()]})
        self.cat.record_reports([('finished', batched['id'],
                                  (states.SUCCEEDED, {}, None))])
        for task in (quick, batched):
            got = self.cat.get_task(task['id'])
            self.assertEqual(states.SUCCEEDED, got['status'])
            self.assertIsNotNone(got['started_at'])

    def test_last_sizes_are_those_of_the_newest_good_backup(self):
        def backup(host, sizes):
            b = self.cat.create_backup([host], [])
            for service, size in sizes.items():
                task = self._task(b['id'], host=host, service=service)
                art = dict(_artifact(service), size=size)
                self.cat.task_finished(task['id'], states.SUCCEEDED,
                                       {'artifacts': [art, dict(
                                           art, name=service + '2')]})
            return b

        backup('h1', {'nova': 10, 'mysql': 7})
        backup('h1', {'nova': 20})
        backup('h2', {'nova': 5})
        failed = self.cat.create_backup(['h1'], [])
        task = self._task(failed['id'], host='h1', service='mysql')
        self.cat.task_finished(task['id'], states.FAILED, {}, 'boom')
        self.assertEqual({('h1', 'nova'): 40, ('h1', 'mysql'): 14},
                         self.cat.last_sizes(['h1']))
        self.assertEqual({('h2', 'nova'): 10}, self.cat.last_sizes(['h2']))

    def test_forgetting_a_restored_backup_keeps_the_restore(self):
        backup = self.cat.create_backup(['h1'], [])
        task = self._task(backup['id'])
        self.cat.task_finished(task['id'], states.SUCCEEDED,
                               {'artifacts': [_artifact()]})
        restore = self.cat.create_restore(backup['id'], ['h1'], ['nova'],
                                          [])
        # SQLite enforces foreign keys here as InnoDB does.
        self.cat.delete_backup_rows(backup['id'])
        self.assertRaises(exception.NotFound, self.cat.get_backup,
                          backup['id'])
        kept = self.cat.get_restore(restore['id'])
        self.assertIsNone(kept['backup_id'])
        self.assertEqual(['nova'], kept['services'])
