"""Policies, pruning and verification bookkeeping on SQLite, no broker."""

import datetime
from unittest import mock

from oslo_utils import timeutils

from osbackup.conductor import dispatch
from osbackup.conductor import policies
from osbackup.conductor import prune
from osbackup.conductor import verify
from osbackup.db import api
from osbackup import exception
from osbackup import states
from osbackup.tests import base
from osbackup.tests.unit.conductor import test_backups


def _policy(name='p', **kw):
    values = dict(name=name, schedule='0 2 * * *', hosts=[], services=[],
                  targets=['local'], keep_days=0, keep_last=1, keep_daily=0,
                  keep_weekly=0, keep_monthly=0, verify_deep=False,
                  distribute_rings=False, enabled=True)
    values.update(kw)
    return values


class CatalogueCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.cat = api.Catalogue('sqlite://')
        self.cat.sync()
        self.cat.delete_policy('default')
        self.agent_api = test_backups.FakeAgentAPI()
        self.dispatcher = dispatch.Dispatcher(self.cfg.conf, self.cat,
                                              self.agent_api)
        self.dispatcher.on_failed = lambda *a: None

    def backup(self, artifacts, policy='p', status=states.SUCCEEDED,
               age_days=0):
        created = timeutils.utcnow() - datetime.timedelta(days=age_days)
        with mock.patch.object(timeutils, 'utcnow', return_value=created):
            b = self.cat.create_backup(['h'], [], policy, ['local'])
            for service, name in artifacts:
                t = self.cat.create_task('backup', 'h', service, {}, 60,
                                         backup_id=b['id'])
                self.cat.task_finished(t['id'], states.SUCCEEDED, {
                    'artifacts': [{'name': name, 'kind': 'files',
                                   'location': '/s/%d/%s' % (b['id'], name),
                                   'size': 1, 'sha256': 'a' * 64,
                                   'copies': [{'target': 'local',
                                               'location': '/s/x',
                                               'sha256': 'a' * 64}]}]})
        self.cat.set_backup_status(b['id'], status)
        return b['id']


class PolicyRunnerTest(CatalogueCase):

    def test_due_run_happens_once_across_conductors(self):
        self.cat.create_policy(_policy())
        created = []
        fake_backups = mock.Mock()
        fake_backups.create.side_effect = lambda *a, **kw: created.append(kw)
        runners = [policies.PolicyRunner(self.cfg.conf, self.cat,
                                         fake_backups, mock.Mock())
                   for _ in range(2)]
        for r in runners:
            r.run_due()      # first sight: scheduled, not run
        self.assertEqual([], created)
        later = timeutils.utcnow() + datetime.timedelta(days=1, hours=1)
        with mock.patch.object(timeutils, 'utcnow', return_value=later):
            for r in runners:
                r.run_due()
        self.assertEqual(1, len(created))
        self.assertEqual('p', created[0]['policy'])

    def test_disabled_policy_never_runs(self):
        self.cat.create_policy(_policy(enabled=False))
        fake = mock.Mock()
        runner = policies.PolicyRunner(self.cfg.conf, self.cat, fake,
                                       mock.Mock())
        runner.run_due()
        later = timeutils.utcnow() + datetime.timedelta(days=2)
        with mock.patch.object(timeutils, 'utcnow', return_value=later):
            runner.run_due()
        fake.create.assert_not_called()

    def test_validation(self):
        self.assertRaises(exception.InvalidInput, policies.validate,
                          {'schedule': 'every day'}, ['local'])
        self.assertRaises(exception.InvalidInput, policies.validate,
                          {'keep_days': 0, 'keep_last': 0}, ['local'])
        self.assertRaises(exception.InvalidInput, policies.validate,
                          {'targets': ['tape']}, ['local', 'ssh'])
        self.assertEqual('0 2 * * *', policies.validate(
            {'schedule': '0  2 * * *'}, ['local'])['schedule'])


class PruneTest(CatalogueCase):

    def setUp(self):
        super().setUp()
        self.cat.create_policy(_policy(keep_last=1))
        self.pruner = prune.Pruner(self.cfg.conf, self.cat, self.dispatcher)

    def test_keep_last_and_last_good_copy_is_protected(self):
        oldest = self.backup([('nova', 'nova'), ('mysql', 'keystone')],
                             age_days=3)
        middle = self.backup([('nova', 'nova')], age_days=2)
        newest = self.backup([('nova', 'nova')], age_days=1)
        manual = self.backup([('nova', 'nova')], policy=None, age_days=9)
        plan = {p['id']: p for p in self.pruner.plan()}
        # keep_last=1 keeps the newest; the oldest holds the only
        # keystone dump, so it stays too; manual backups have no policy.
        self.assertEqual([middle], list(plan))
        self.assertNotIn(oldest, plan)
        self.assertNotIn(newest, plan)
        self.assertNotIn(manual, plan)
        self.assertIn('last', plan[middle]['reason'])

    def test_prune_sends_deletes_and_forgets_after_success(self):
        self.backup([('nova', 'nova')], age_days=2)
        self.backup([('nova', 'nova')], age_days=1)
        doomed = self.pruner.prune(dry_run=True)
        self.assertEqual([], self.agent_api.sent)
        self.pruner.prune()
        (task,) = self.agent_api.sent
        self.assertEqual('delete', task['kind'])
        self.assertEqual([{'target': 'local', 'location': '/s/x'}],
                         task['params']['objects'])
        self.assertEqual(prune.DELETING,
                         self.cat.get_backup(doomed[0]['id'])['status'])
        self.cat.task_finished(task['id'], states.SUCCEEDED, {})
        self.pruner.task_done(self.cat.get_task(task['id']))
        self.assertRaises(exception.NotFound, self.cat.get_backup,
                          doomed[0]['id'])

    def test_delete_refuses_newest_good_copy_without_force(self):
        only = self.backup([('nova', 'nova')])
        err = self.assertRaises(exception.Conflict, self.pruner.delete, only)
        self.assertIn('--force', err.message)
        self.pruner.delete(only, force=True)
        self.assertEqual(1, len(self.agent_api.sent))


class VerifyTest(CatalogueCase):

    def test_problem_in_one_copy_marks_it_and_the_backup(self):
        backup_id = self.backup([('nova', 'nova')])
        orch = verify.VerifyOrchestrator(self.cfg.conf, self.cat,
                                         self.dispatcher)
        ver = orch.create(backup_id, deep=True)
        (task,) = self.agent_api.sent
        self.assertTrue(task['params']['deep'])
        art = task['params']['artifacts'][0]
        self.cat.task_finished(task['id'], states.SUCCEEDED, {
            'problems': [{'artifact_id': art['id'], 'artifact': 'nova',
                          'copy': 'local', 'error': 'sha256 mismatch'}],
            'details': []})
        orch.task_done(self.cat.get_task(task['id']))
        done = self.cat.get_verification(ver['id'])
        self.assertEqual('CORRUPT', done['status'])
        backup = self.cat.get_backup(backup_id)
        self.assertEqual('CORRUPT', backup['verified']['status'])
        self.assertEqual(states.CORRUPT,
                         backup['artifacts'][0]['copies'][0]['status'])
