"""Catalogue.backup_status: freshness rows from a handful of queries."""

import datetime

from oslo_utils import timeutils
import sqlalchemy as sa

from osbackup.db import api
from osbackup.db import models
from osbackup import states
from osbackup.tests import base


def _art(name, incremental=False, size=10):
    return {'name': name, 'kind': 'files', 'location': '/s/%s' % name,
            'size': size, 'sha256': 'a' * 64,
            'meta': {'level': 'incremental' if incremental else 'full'}}


class StatusTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.cat = api.Catalogue('sqlite://')
        self.cat.sync()

    def run_task(self, host, service, status, artifacts=(), at=None,
                 base=None):
        backup = self.cat.create_backup([host], [service])
        params = {'base': {'artifact_id': base}} if base else {}
        task = self.cat.create_task('backup', host, service, params, 3600,
                                    backup_id=backup['id'])
        if status == states.RUNNING:
            self.cat.task_started(task['id'])
            return backup, task
        self.cat.task_started(task['id'])
        self.cat.task_finished(task['id'], status,
                               {'artifacts': list(artifacts)},
                               None if status == states.SUCCEEDED else 'x')
        if at is not None:
            with self.cat.session() as s:
                s.execute(sa.update(models.Task)
                          .where(models.Task.id == task['id'])
                          .values(finished_at=at,
                                  started_at=at - datetime.timedelta(
                                      seconds=90)))
        return backup, task

    def status(self, **kw):
        return {(r['host'], r['service']): r
                for r in self.cat.backup_status(**kw)}

    def test_success_failure_and_running(self):
        old = timeutils.utcnow() - datetime.timedelta(hours=5)
        self.run_task('h1', 'nova', states.SUCCEEDED, [_art('nova')], at=old)
        self.run_task('h1', 'nova', states.FAILED)
        self.run_task('h1', 'glance', states.SUCCEEDED, [_art('glance')])
        self.run_task('h2', 'nova', states.SUCCEEDED, [_art('nova')])
        self.run_task('h2', 'nova', states.RUNNING)
        self.run_task('h2', 'cinder', states.SKIPPED)
        rows = self.status()
        self.assertNotIn(('h2', 'cinder'), rows)  # not installed there
        nova = rows[('h1', 'nova')]
        self.assertEqual(old, nova['last_success'])
        self.assertEqual(states.FAILED, nova['last_result'])
        self.assertGreater(nova['last_attempt'], old)
        self.assertEqual(90.0, nova['last_duration'])
        self.assertEqual(states.SUCCEEDED,
                         rows[('h1', 'glance')]['last_result'])
        self.assertEqual(states.RUNNING, rows[('h2', 'nova')]['last_result'])
        self.assertEqual(10, rows[('h2', 'nova')]['stored_bytes'])

    def test_filters_and_services_an_agent_found(self):
        self.run_task('h1', 'nova', states.SUCCEEDED, [_art('nova')])
        self.run_task('h2', 'nova', states.SUCCEEDED, [_art('nova')])
        rows = self.status(hosts=['h1'],
                           agent_services={'h1': ['nova', 'keystone'],
                                           'h2': ['glance']})
        self.assertEqual({('h1', 'nova'), ('h1', 'keystone')}, set(rows))
        self.assertIsNone(rows[('h1', 'keystone')]['last_success'])
        self.assertTrue(rows[('h1', 'keystone')]['installed'])
        self.assertEqual({('h2', 'nova')},
                         set(self.status(hosts=['h2'], services=['nova'])))

    def test_chain_length_counts_since_the_newest_full(self):
        b1, _t = self.run_task('h1', 'nova', states.SUCCEEDED,
                               [_art('nova')])
        full = self.cat.get_backup(b1['id'])['artifacts'][0]['id']
        b2, _t = self.run_task('h1', 'nova', states.SUCCEEDED,
                               [_art('nova', True)], base=full)
        inc = self.cat.get_backup(b2['id'])['artifacts'][0]['id']
        self.run_task('h1', 'nova', states.SUCCEEDED, [_art('nova', True)],
                      base=inc)
        self.assertEqual(3, self.status()[('h1', 'nova')]['chain_length'])
        self.run_task('h1', 'nova', states.SUCCEEDED, [_art('nova')])
        row = self.status()[('h1', 'nova')]
        self.assertEqual(1, row['chain_length'])
        self.assertEqual(40, row['stored_bytes'])

    def test_newest_verification_decides(self):
        backup, _t = self.run_task('h1', 'nova', states.SUCCEEDED,
                                   [_art('nova')])
        for status in ('OK', 'CORRUPT'):
            ver = self.cat.create_verification(backup['id'], False)
            with self.cat.session() as s:
                s.execute(sa.update(models.Verification)
                          .where(models.Verification.id == ver['id'])
                          .values(status=status,
                                  finished_at=timeutils.utcnow()))
            row = self.status()[('h1', 'nova')]
            self.assertEqual(status, row['last_verify_result'])
            self.assertIsNotNone(row['last_verify'])

    def test_query_count_does_not_grow_with_the_fleet(self):
        for i in range(30):
            self.run_task('h%d' % i, 'nova', states.SUCCEEDED,
                          [_art('nova')])
        statements = []
        sa.event.listen(self.cat.engine, 'before_cursor_execute',
                        lambda *a, **k: statements.append(a[2]))
        rows = self.cat.backup_status()
        self.assertEqual(30, len(rows))
        # Tasks, artifacts, verifications: one grouped query each.
        selects = [st for st in statements if st.startswith('SELECT')]
        self.assertEqual(3, len(selects), selects)

    def test_duration_is_the_newest_successes(self):
        now = timeutils.utcnow().replace(microsecond=0)
        _b, slow = self.run_task('h1', 'nova', states.SUCCEEDED,
                                 [_art('nova')],
                                 at=now - datetime.timedelta(days=1))
        _b, fast = self.run_task('h1', 'nova', states.SUCCEEDED,
                                 [_art('nova')], at=now)
        with self.cat.session() as s:
            for task, took in ((slow, 3000), (fast, 30)):
                s.execute(sa.update(models.Task)
                          .where(models.Task.id == task['id'])
                          .values(started_at=sa.text(
                              'finished_at'), finished_at=sa.text(
                              'finished_at')))
                row = s.get(models.Task, task['id'])
                row.started_at = row.finished_at - datetime.timedelta(
                    seconds=took)
        self.run_task('h1', 'nova', states.FAILED)
        row = self.status()[('h1', 'nova')]
        self.assertEqual(now, row['last_success'])
        self.assertEqual(30.0, row['last_duration'])

    def test_several_stored_names_of_one_service(self):
        """mysql stores one dump per database: bytes add, chains do not."""
        b1, _t = self.run_task('db', 'mysql', states.SUCCEEDED,
                               [_art('nova', size=5), _art('keystone',
                                                           size=7)])
        arts = {a['name']: a['id']
                for a in self.cat.get_backup(b1['id'])['artifacts']}
        self.run_task('db', 'mysql', states.SUCCEEDED,
                      [_art('nova', True, size=1)], base=arts['nova'])
        row = self.status()[('db', 'mysql')]
        self.assertEqual(13, row['stored_bytes'])
        self.assertEqual(2, row['chain_length'])

    def test_plans_read_indexes_without_a_sort(self):
        """SQLite's plan of each query: by an index, no temporary B-tree.

        A full scan or a sort of the whole history is what made the check
        slow on a large fleet (issue 16).
        """
        self.run_task('h1', 'nova', states.SUCCEEDED, [_art('nova')])
        statements = []
        sa.event.listen(self.cat.engine, 'before_cursor_execute',
                        lambda conn, cur, stmt, params, *a: statements
                        .append((stmt, params)))
        self.cat.backup_status()
        plans = {}
        selects = [st for st in statements if st[0].startswith('SELECT')]
        with self.cat.engine.connect() as c:
            for stmt, params in selects[:2]:
                plans[stmt] = ' | '.join(
                    r[-1] for r in c.exec_driver_sql(
                        'EXPLAIN QUERY PLAN ' + stmt, params))
        tasks, artifacts = plans.values()
        self.assertIn('COVERING INDEX ix_tasks_freshness', tasks)
        self.assertIn('COVERING INDEX ix_artifacts_chains', artifacts)
        for plan in plans.values():
            self.assertNotIn('TEMP B-TREE', plan)
            self.assertNotRegex(plan, r'SCAN (tasks|artifacts)\b(?! USING)')

    def test_task_and_restore_counts(self):
        self.run_task('h1', 'nova', states.SUCCEEDED, [_art('nova')])
        self.run_task('h1', 'mysql', states.FAILED)
        self.assertEqual({('backup', 'SUCCEEDED', 1), ('backup', 'FAILED', 1)},
                         set(self.cat.task_counts()))
        self.assertEqual([], self.cat.restore_counts())
