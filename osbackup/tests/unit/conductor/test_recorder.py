"""Batched recording of task reports: nothing lost, nothing counted twice."""

from unittest import mock

from oslo_db import exception as db_exc

from osbackup.conductor import recorder
from osbackup.db import api
from osbackup import states
from osbackup.tests import base
from osbackup.tests.unit.conductor import test_backups


def artifact(host):
    return {'name': 'nova', 'kind': 'files', 'location': '/a/%s' % host,
            'size': 10, 'sha256': 'f' * 64}


class RecorderTest(base.TestCase):

    def setUp(self):
        super().setUp()
        # A file, not :memory:, so the recorder's own thread sees it too.
        self.cat = api.Catalogue('sqlite:///%s/cat.sqlite' % self.state_dir)
        self.cat.sync()
        test_backups.wire_conductor(self)
        self.ended = []
        self.rec = recorder.ReportRecorder(
            self.cat, self._ended, batch_size=50, retry_interval=0,
            on_retried=self.tracker.recheck)
        self.hosts = ['h%02d' % i for i in range(12)]
        for host in self.hosts:
            self.cat.record_heartbeat(host, '1', {'drivers': ['nova']})

    def _ended(self, ended):
        self.ended.extend(t['id'] for t in ended)
        self.tracker.ended(ended)

    def _backup(self):
        backup = self.orch.create([], [])
        sent = {t['host']: t for t in self.agent_api.sent
                if t['backup_id'] == backup['id']}
        self.assertEqual(sorted(self.hosts), sorted(sent))
        return backup['id'], sent

    def _report_all(self, sent, status=states.SUCCEEDED):
        for host, task in sorted(sent.items()):
            self.rec.started(task['id'])
            self.rec.finished(task['id'], status,
                              {'artifacts': [artifact(host)]}, None)

    def _check_once(self, backup_id, sent):
        backup = self.cat.get_backup(backup_id)
        self.assertEqual(states.SUCCEEDED, backup['status'])
        self.assertEqual([states.SUCCEEDED] * len(sent),
                         [t['status'] for t in backup['tasks']])
        self.assertEqual(sorted(sent),
                         sorted(a['host'] for a in backup['artifacts']))
        self.assertEqual(sorted(t['id'] for t in sent.values()),
                         sorted(self.ended))

    def test_a_batch_records_every_report_and_closes_the_backup(self):
        backup_id, sent = self._backup()
        with mock.patch.object(self.cat, 'finish_backup_if_done',
                               wraps=self.cat.finish_backup_if_done) as fin:
            self._report_all(sent)
            self.rec.flush()
        self._check_once(backup_id, sent)
        # Once per batch (24 reports, one batch), not once per task.
        self.assertEqual(1, fin.call_count)
        started = self.cat.get_task(sent['h00']['id'])['started_at']
        self.assertIsNotNone(started)

    def test_backup_stays_open_until_its_last_report(self):
        backup_id, sent = self._backup()
        last = sent.pop('h11')
        self._report_all(sent)
        self.rec.flush()
        self.assertEqual(states.RUNNING,
                         self.cat.get_backup(backup_id)['status'])
        self.rec.finished(last['id'], states.SUCCEEDED,
                          {'artifacts': [artifact('h11')]}, None)
        self.rec.flush()
        sent['h11'] = last
        self._check_once(backup_id, sent)

    def test_repeated_and_late_reports_change_nothing(self):
        backup_id, sent = self._backup()
        self._report_all(sent)
        # The same reports again in the same batch, then in a later one,
        # plus a late start and progress and an unknown task.
        self._report_all(sent)
        self.rec.flush()
        self._report_all(sent)
        self.rec.started(sent['h03']['id'])
        self.rec.progress(sent['h03']['id'], 99, 9)
        self.rec.finished('no-such-task', states.SUCCEEDED, {}, None)
        self.rec.flush()
        self._check_once(backup_id, sent)
        self.assertEqual(0, self.cat.get_task(
            sent['h03']['id'])['progress_files'])

    def test_a_report_ending_first_wins_within_a_batch(self):
        backup_id, sent = self._backup()
        task = sent['h00']
        self.rec.finished(task['id'], states.FAILED, {}, 'disk full')
        self.rec.finished(task['id'], states.SUCCEEDED,
                          {'artifacts': [artifact('h00')]}, None)
        self.rec.started(task['id'])
        self.rec.flush()
        row = self.cat.get_task(task['id'])
        self.assertEqual((states.FAILED, 'disk full'),
                         (row['status'], row['error']))
        self.assertEqual([], self.cat.get_backup(backup_id)['artifacts'])

    def test_progress_keeps_a_task_alive(self):
        _backup_id, sent = self._backup()
        task = sent['h05']
        self.rec.started(task['id'])
        self.rec.progress(task['id'], 1000, 7)
        self.rec.flush()
        row = self.cat.get_task(task['id'])
        self.assertEqual((states.RUNNING, 1000, 7),
                         (row['status'], row['progress_bytes'],
                          row['progress_files']))

    def test_failed_writes_are_retried_without_loss_or_double_count(self):
        backup_id, sent = self._backup()
        real = self.cat.record_reports
        calls = []

        def flaky(batch):
            calls.append(len(batch))
            if len(calls) <= 2:
                raise db_exc.DBConnectionError('MariaDB went away')
            return real(batch)

        with mock.patch.object(self.cat, 'record_reports',
                               side_effect=flaky):
            self._report_all(sent)
            self.rec.flush()
        self.assertEqual([24, 24, 24], calls)
        self._check_once(backup_id, sent)

    def test_a_commit_that_failed_but_was_written_is_not_counted_twice(self):
        backup_id, sent = self._backup()
        real = self.cat.record_reports
        calls = []

        def written_then_lost(batch):
            calls.append(len(batch))
            ended = real(batch)
            if len(calls) == 1:
                # The server committed, the client saw the connection drop.
                raise db_exc.DBDeadlock()
            return ended

        with mock.patch.object(self.cat, 'record_reports',
                               side_effect=written_then_lost):
            self._report_all(sent)
            self.rec.flush()
        self.assertEqual(2, len(calls))
        backup = self.cat.get_backup(backup_id)
        # One artifact per task, and the retry ended nothing new...
        self.assertEqual(sorted(sent),
                         sorted(a['host'] for a in backup['artifacts']))
        self.assertEqual([], self.ended)
        # ...but the backup was still closed, by the recheck.
        self.assertEqual(states.SUCCEEDED, backup['status'])

    def test_one_report_the_catalogue_refuses_does_not_block_the_rest(self):
        backup_id, sent = self._backup()
        poison = sent['h07']['id']
        real = self.cat.record_reports

        def refuse(batch):
            if any(r[1] == poison and r[0] == recorder.FINISHED
                   for r in batch):
                raise db_exc.DBDataError('value too long')
            return real(batch)

        with mock.patch.object(self.cat, 'record_reports',
                               side_effect=refuse):
            self._report_all(sent)
            self.rec.flush()
        backup = self.cat.get_backup(backup_id)
        statuses = {t['host']: t['status'] for t in backup['tasks']}
        self.assertEqual(states.RUNNING, statuses.pop('h07'))
        self.assertEqual({states.SUCCEEDED}, set(statuses.values()))
        self.assertEqual(11, len(backup['artifacts']))
        self.assertEqual(11, len(set(self.ended)))
        self.assertEqual(11, len(self.ended))

    def test_batches_are_bounded(self):
        _backup_id, sent = self._backup()
        with mock.patch.object(self.cat, 'record_reports',
                               wraps=self.cat.record_reports) as rec:
            self._report_all(sent)
            self.rec.batch_size = 10
            self.rec.flush()
        self.assertEqual([10, 10, 4],
                         [len(c.args[0]) for c in rec.call_args_list])

    def test_stop_writes_what_is_queued(self):
        backup_id, sent = self._backup()
        self.rec.start()
        self._report_all(sent)
        self.rec.stop()
        self.assertEqual(0, self.rec.pending())
        self._check_once(backup_id, sent)

    def test_heartbeats_upsert_agents_in_a_batch(self):
        self.rec.heartbeat('h00', '2', {'drivers': ['nova', 'mysql']})
        self.rec.heartbeat('new1', '1', {'drivers': ['nova']})
        self.rec.heartbeat('new1', '3', {'drivers': ['glance']})
        self.rec.flush()
        agents = {a['host']: a for a in self.cat.list_agents(60)}
        self.assertEqual(len(self.hosts) + 1, len(agents))
        self.assertEqual(('2', ['nova', 'mysql']),
                         (agents['h00']['version'],
                          agents['h00']['info']['drivers']))
        # The newest heartbeat of a host wins.
        self.assertEqual(('3', ['glance'], states.UP),
                         (agents['new1']['version'],
                          agents['new1']['info']['drivers'],
                          agents['new1']['state']))

    def test_heartbeats_keep_held_tasks_alive_but_revive_none(self):
        _backup_id, sent = self._backup()
        held, done = sent['h01']['id'], sent['h02']['id']
        self.rec.finished(done, states.SUCCEEDED,
                          {'artifacts': [artifact('h02')]}, None)
        self.rec.heartbeat('h01', '1', {'drivers': ['nova'],
                                        'tasks': [held, done]})
        # Another host cannot keep h03's task alive.
        self.rec.heartbeat('h02', '1', {'drivers': ['nova'],
                                        'tasks': [sent['h03']['id'], done]})
        self.rec.flush()
        self.assertEqual(states.RUNNING, self.cat.get_task(held)['status'])
        self.assertEqual(states.SUCCEEDED, self.cat.get_task(done)['status'])
        self.assertEqual(states.PENDING,
                         self.cat.get_task(sent['h03']['id'])['status'])

    def test_a_new_agent_recorded_by_another_conductor_is_retried(self):
        real = self.cat.record_reports
        calls = []

        def raced(batch):
            calls.append(1)
            if len(calls) == 1:
                self.cat.record_heartbeat('late', '1', {'drivers': []})
                raise db_exc.DBDuplicateEntry(['host'])
            return real(batch)

        with mock.patch.object(self.cat, 'record_reports',
                               side_effect=raced):
            self.rec.heartbeat('late', '2', {'drivers': ['nova']})
            self.rec.flush()
        agent = [a for a in self.cat.list_agents(60) if a['host'] == 'late']
        self.assertEqual('2', agent[0]['version'])

    def test_wait_written_is_a_barrier_behind_the_database(self):
        backup_id, sent = self._backup()
        self.assertTrue(self.rec.wait_written(0))     # nothing received
        real = self.cat.record_reports
        down = [True]

        def flaky(batch):
            if down[0]:
                raise db_exc.DBConnectionError('catalogue down')
            return real(batch)

        with mock.patch.object(self.cat, 'record_reports', side_effect=flaky):
            self.rec.retry_interval = 0.05
            self.rec.start()
            self.addCleanup(self.rec.stop)
            self._report_all(sent)
            # Received but not written: the barrier does not pass.
            self.assertFalse(self.rec.wait_written(0.3))
            down[0] = False
            self.assertTrue(self.rec.wait_written(10))
        self._check_once(backup_id, sent)
