"""Restore orchestration on a SQLite catalogue, without a broker."""

import contextlib
import datetime
from unittest import mock

import fixtures
from oslo_db import exception as db_exc
import sqlalchemy as sa

from osbackup.conductor import restore_outcome
from osbackup.conductor import restores
from osbackup.db import api
from osbackup.db import models
from osbackup import restore_phases
from osbackup import states
from osbackup.tests import base
from osbackup.tests.unit.conductor import test_backups

HOSTS = {'ctl': ['nova-api'], 'cmp': ['nova-compute']}


class InjectedCrash(Exception):
    """Stands for a database error or the conductor dying."""


class RestoreOrchestratorTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.cat = api.Catalogue('sqlite://')
        self.cat.sync()
        test_backups.wire_conductor(self)
        self.restores = self.tracker.restores
        for host, units in HOSTS.items():
            self.beat(host, units)
        self.backup_id = self.make_backup()

    def beat(self, host, units=None):
        units = HOSTS[host] if units is None else units
        self.cat.record_heartbeat(host, '1', {
            'drivers': ['nova'], 'services': ['nova'],
            'units': {'nova': units}})

    def make_backup(self):
        backup = self.cat.create_backup(sorted(HOSTS), ['nova'])
        tasks = self.cat.create_tasks([
            dict(kind='backup', host=host, service='nova',
                 backup_id=backup['id']) for host in sorted(HOSTS)], 3600)
        for task in tasks:
            self.cat.task_finished(task['id'], states.SUCCEEDED, {
                'artifacts': [{
                    'name': 'nova', 'kind': 'files',
                    'location': '/s/%s-nova' % task['host'], 'size': 1,
                    'sha256': 'a' * 64, 'meta': {'paths': ['etc/nova']}}]})
        self.cat.finish_backup_if_done(backup['id'])
        return backup['id']

    # -- driving ---------------------------------------------------------

    def sent(self, kind):
        return [t for t in self.agent_api.sent if t['kind'] == kind]

    def answer(self, kind, status=states.SUCCEEDED, hosts=None, steps=True,
               error=None):
        """Report the sent tasks of ``kind`` (of ``hosts``) ended."""
        for task in self.sent(kind):
            if hosts is not None and task['host'] not in hosts:
                continue
            result = {'steps': [{'host': task['host'], 'action': 'x',
                                 'target': kind, 'status': status}]
                      if steps else []}
            self.tracker.finished(task['id'], status, result, error)

    def run_phases(self, *kinds):
        for kind in kinds:
            self.answer('restore_' + kind)

    def restore(self):
        return self.cat.get_restore(self.restore_id)

    def sent_after_stop(self):
        return [t['kind'] for t in self.agent_api.sent
                if t['kind'] not in ('restore_prepare', 'restore_stop',
                                     'restore_rollback')]

    def start(self):
        self.restore_id = self.restores.create(self.backup_id, [], [])['id']

    @contextlib.contextmanager
    def failing_task_insert(self, kind):
        """The next INSERT of ``kind`` tasks fails (as a lost database)."""
        armed = [True]

        def before(conn, cursor, statement, params, context, executemany):
            rows = params if executemany else [params]
            if armed[0] and statement.startswith('INSERT INTO tasks') and \
                    any(kind in str(r) for r in rows):
                armed[0] = False
                raise InjectedCrash('database went away')
        sa.event.listen(self.cat.engine, 'before_cursor_execute', before)
        try:
            yield armed
        finally:
            sa.event.remove(self.cat.engine, 'before_cursor_execute', before)

    def expire(self, task_ids):
        """Make tasks look silent for long, then run the deadlines."""
        old = datetime.datetime(2000, 1, 1)
        with self.cat.session() as s:
            s.execute(sa.update(models.Task)
                      .where(models.Task.id.in_(task_ids))
                      .values(created_at=old, updated_at=old))
        self.tracker.check_deadlines()

    # -- a phase is never skipped ------------------------------------------

    def test_database_error_creating_a_phase_never_skips_it(self):
        self.start()
        with self.failing_task_insert('restore_stop') as armed:
            with contextlib.suppress(db_exc.DBError):
                # The recorder logs this and carries on.
                self.run_phases('prepare')
            self.assertFalse(armed[0], 'the failure was not injected')
        self.assertEqual([], self.sent('restore_stop'))
        # The periodic check (or a restarted conductor) moves on.
        self.restores.check()
        self.assertEqual([], self.sent_after_stop())
        self.assertEqual(sorted(HOSTS),
                         sorted(t['host'] for t in self.sent('restore_stop')))
        self.run_phases('stop', 'load_db', 'replace', 'start', 'check',
                        'finish')
        self.assertEqual(states.SUCCEEDED, self.restore()['status'])

    def test_conductor_killed_after_the_phase_commit_runs_no_later_phase(
            self):
        self.start()
        # The conductor dies after recording the next phase, before any
        # of its tasks was sent.
        with mock.patch.object(self.restores.dispatch, 'wave',
                               side_effect=InjectedCrash), \
                mock.patch.object(self.restores.dispatch, 'send',
                                  side_effect=InjectedCrash):
            with contextlib.suppress(InjectedCrash):
                self.run_phases('prepare')
        self.assertEqual([], self.sent('restore_stop'))
        # A new conductor takes over: nothing after stop may run.
        test_backups.wire_conductor(self)
        self.restores = self.tracker.restores
        for _ in range(3):
            self.restores.check()
        self.assertEqual([], self.sent_after_stop())
        restore = self.restore()
        self.assertEqual(restore_phases.PHASES.index('stop'),
                         restore['phase'])
        stop = [t['id'] for t in restore['tasks']
                if t['kind'] == 'restore_stop']
        self.assertEqual(len(HOSTS), len(stop))
        # Its tasks were never sent: they time out and the restore rolls
        # back instead of running on without stopping anything.
        self.expire(stop)
        self.assertEqual([], self.sent_after_stop())
        self.assertEqual(sorted(HOSTS), sorted(
            t['host'] for t in self.sent('restore_rollback')))
        self.answer('restore_rollback')
        restore = self.restore()
        self.assertEqual(states.FAILED, restore['status'])
        self.assertIn('stop failed', restore['error'])

    def test_a_phase_missing_its_tasks_fails_the_restore(self):
        self.start()
        self.run_phases('prepare')
        with self.cat.session() as s:
            s.execute(sa.delete(models.Task).where(
                models.Task.kind == 'restore_stop',
                models.Task.host == 'cmp'))
        self.answer('restore_stop', hosts=['ctl'])
        self.assertEqual([], self.sent_after_stop())
        restore = self.restore()
        self.assertIn('phase stop has 1 of its 2 tasks', restore['error'])
        self.assertEqual(restores.ROLLBACK_PHASE, restore['phase'])

    def test_a_phase_without_work_is_passed_legitimately(self):
        for host in HOSTS:
            self.beat(host, units=[])
        self.start()
        self.run_phases('prepare')
        # No units anywhere: no stop tasks, straight to replace.
        self.assertEqual([], self.sent('restore_stop'))
        self.assertEqual(2, len(self.sent('restore_replace')))
        self.run_phases('replace', 'finish')
        self.assertEqual(states.SUCCEEDED, self.restore()['status'])

    def test_phases_without_work_cost_no_catalogue_round(self):
        moves = []
        real = self.cat.start_restore_phase

        def spy(restore_id, from_phase, to_phase, specs, **kw):
            moves.append((restore_phases.PHASES[from_phase],
                          restore_phases.PHASES[to_phase]))
            return real(restore_id, from_phase, to_phase, specs, **kw)

        self.useFixture(fixtures.MockPatchObject(
            self.cat, 'start_restore_phase', side_effect=spy))
        self.start()
        self.run_phases('prepare', 'stop', 'replace', 'start', 'check',
                        'finish')
        self.assertEqual(states.SUCCEEDED, self.restore()['status'])
        # No databases and no Galera cluster: from stop straight to
        # replace, from replace to start, one move per phase with work.
        self.assertEqual([('prepare', 'stop'), ('stop', 'replace'),
                          ('replace', 'start'), ('start', 'check'),
                          ('check', 'finish')], moves)

    def test_timeline_shows_every_task_of_every_host(self):
        self.start()
        self.answer('restore_prepare')
        self.answer('restore_stop', steps=False)
        for kind in ('load_db', 'replace', 'start', 'check', 'finish'):
            self.answer('restore_' + kind, steps=False)
        restore = self.restore()
        self.assertEqual(states.SUCCEEDED, restore['status'])
        seen = {(s['phase'], s['host']) for s in restore['steps']}
        for task in restore['tasks']:
            self.assertIn((task['kind'][len('restore_'):], task['host']),
                          seen)

    def test_creating_a_restore_is_one_transaction(self):
        with self.failing_task_insert('restore_prepare'):
            self.assertRaises(db_exc.DBError, self.restores.create,
                              self.backup_id, [], [])
        self.assertEqual([], self.cat.list_restores())
        self.assertEqual([], self.cat.running_restores())

    # -- honest results --------------------------------------------------

    def fail_with_silent_host(self):
        """A restore whose cmp agent dies during stop."""
        self.start()
        self.run_phases('prepare')
        self.answer('restore_stop', hosts=['ctl'])
        restore = self.restore()
        self.expire([t['id'] for t in restore['tasks']
                     if t['host'] == 'cmp' and t['status'] in
                     states.TASK_ACTIVE])
        self.answer('restore_rollback', hosts=['ctl'])
        rollback = [t['id'] for t in self.restore()['tasks']
                    if t['kind'] == 'restore_rollback' and
                    t['host'] == 'cmp']
        self.expire(rollback)
        return self.restore()

    def test_host_whose_agent_is_gone_is_not_called_rolled_back(self):
        restore = self.fail_with_silent_host()
        self.assertEqual(states.FAILED, restore['status'])
        self.assertEqual(
            [{'host': 'cmp', 'rollback': restore_outcome.TIMED_OUT},
             {'host': 'ctl', 'rollback': restore_outcome.DONE}],
            [{k: h[k] for k in ('host', 'rollback')}
             for h in restore_outcome.hosts(restore)])
        (doubt,) = restore_outcome.needs_attention(restore)
        self.assertEqual('cmp', doubt['host'])
        self.assertIn('half-restored', doubt['attention'])

    def test_agent_back_reports_its_own_rollback(self):
        self.fail_with_silent_host()
        sent = len(self.sent('restore_rollback'))
        # Still down: nothing is asked.
        self.restores.check()
        self.assertEqual(sent, len(self.sent('restore_rollback')))
        self.agent_heard_again('cmp')
        self.restores.check()
        self.restores.check()   # asked once, not once per check
        retry = self.sent('restore_rollback')[sent:]
        self.assertEqual(['cmp'], [t['host'] for t in retry])
        self.tracker.finished(retry[0]['id'], states.SUCCEEDED, {'steps': [
            {'host': 'cmp', 'action': 'recover', 'target': 'journal',
             'status': states.SUCCEEDED},
            {'host': 'cmp', 'action': 'start', 'target': 'nova-compute',
             'status': states.SUCCEEDED}]}, None)
        restore = self.restore()
        self.assertEqual(states.FAILED, restore['status'])
        self.assertEqual([], restore_outcome.needs_attention(restore))
        self.assertEqual(restore_outcome.DONE,
                         restore_outcome.host_rollback(restore, 'cmp'))
        self.assertIn(('rollback', 'cmp', 'recover'),
                      [(s['phase'], s['host'], s['action'])
                       for s in restore['steps']])

    def fail_in_prepare_on_cmp(self):
        """Prepare fails on cmp; ctl has rolled back, cmp is asked to."""
        self.start()
        self.answer('restore_prepare', status=states.FAILED, hosts=['cmp'],
                    error='verify failed')
        self.answer('restore_prepare', hosts=['ctl'])
        self.answer('restore_rollback', hosts=['ctl'])

    def agent_heard_again(self, host):
        later = datetime.datetime.utcnow() + datetime.timedelta(seconds=5)
        with mock.patch.object(api, '_now', return_value=later):
            self.beat(host)

    def test_rollback_that_failed_needs_attention(self):
        self.fail_in_prepare_on_cmp()
        self.answer('restore_rollback', status=states.FAILED, hosts=['cmp'],
                    error='Rollback left 1 step(s) undone')
        restore = self.restore()
        self.assertEqual(states.FAILED, restore['status'])
        self.assertEqual(['cmp'], [h['host'] for h in
                                   restore_outcome.needs_attention(restore)])
        self.assertEqual(restore_outcome.FAILED,
                         restore_outcome.host_rollback(restore, 'cmp'))

    def test_succeeded_restore_needs_no_rollback(self):
        self.start()
        self.run_phases('prepare', 'stop', 'load_db', 'replace', 'start',
                        'check', 'finish')
        restore = self.restore()
        self.assertEqual(states.SUCCEEDED, restore['status'])
        self.assertEqual({restore_outcome.NOT_NEEDED}, {
            h['rollback'] for h in restore_outcome.hosts(restore)})

    def test_rollback_cut_short_by_the_agents_death_is_asked_again(self):
        self.fail_in_prepare_on_cmp()
        # The agent died in the rollback; the next one rolled back from
        # its journal at start-up and reports the interrupted task.
        (first,) = [t for t in self.sent('restore_rollback')
                    if t['host'] == 'cmp']
        self.tracker.finished(first['id'], states.FAILED, {},
                              'the agent on cmp stopped while running the '
                              'task')
        restore = self.restore()
        (doubt,) = restore_outcome.needs_attention(restore)
        self.assertIn('did not run the rollback', doubt['attention'])
        self.agent_heard_again('cmp')
        self.restores.check()
        (retry,) = [t for t in self.sent('restore_rollback')
                    if t['host'] == 'cmp' and t['id'] != first['id']]
        self.tracker.finished(retry['id'], states.SUCCEEDED, {'steps': [
            {'host': 'cmp', 'action': 'recover', 'target': 'journal',
             'status': states.SUCCEEDED}]}, None)
        self.assertEqual([], restore_outcome.needs_attention(self.restore()))

    def test_rollback_that_ran_and_failed_is_not_asked_again(self):
        self.fail_in_prepare_on_cmp()
        self.answer('restore_rollback', status=states.FAILED, hosts=['cmp'],
                    error='Rollback left 1 step(s) undone')
        sent = len(self.agent_api.sent)
        self.agent_heard_again('cmp')
        self.restores.check()
        self.assertEqual(sent, len(self.agent_api.sent))
