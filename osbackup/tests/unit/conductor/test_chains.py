"""Incremental chains in the catalogue: bases, restore plans, retention."""

from unittest import mock

from osbackup.conductor import backups
from osbackup.conductor import prune
from osbackup.conductor import restore_plan
from osbackup.conductor import verify
from osbackup.db import models
from osbackup import exception
from osbackup import states
from osbackup.tests.unit.conductor import test_policies


class ChainTest(test_policies.CatalogueCase):

    def setUp(self):
        super().setUp()
        self.cat.create_policy(test_policies._policy(keep_last=1))
        self.pruner = prune.Pruner(self.cfg.conf, self.cat, self.dispatcher)

    def link(self, base=None, level=None, policy='p', size=1):
        """A backup of h/nova, incremental on ``base`` (a backup id)."""
        params = {}
        if base is not None:
            head = self.cat.chain_bases(['h'])[('h', 'nova')]
            self.assertEqual(base, head['backup_id'])
            params['base'] = head
        level = level or ('incremental' if base else 'full')
        b = self.cat.create_backup(['h'], [], policy, ['local'])
        t = self.cat.create_task('backup', 'h', 'nova', params, 60,
                                 backup_id=b['id'])
        self.cat.task_finished(t['id'], states.SUCCEEDED, {'artifacts': [{
            'name': 'nova', 'kind': 'files',
            'location': '/s/%d/nova' % b['id'], 'size': size,
            'sha256': '%064d' % b['id'],
            'meta': {'level': level, 'depth': 0 if level == 'full' else
                     params['base']['depth'] + 1, 'paths': ['etc/nova']}}]})
        self.cat.set_backup_status(b['id'], states.SUCCEEDED)
        return b['id']

    def artifact(self, backup_id):
        return self.cat.get_backup(backup_id)['artifacts'][0]

    def test_parent_comes_from_the_task_and_the_agents_level(self):
        full = self.link()
        inc = self.link(base=full)
        fell_back = self.link(base=inc, level='full')
        self.assertIsNone(self.artifact(full)['parent_id'])
        self.assertEqual(self.artifact(full)['id'],
                         self.artifact(inc)['parent_id'])
        # The agent had no manifest of the base and wrote a full backup.
        self.assertIsNone(self.artifact(fell_back)['parent_id'])
        self.assertEqual(0, self.cat.chain_bases(['h'])[('h', 'nova')]
                         ['depth'])

    def test_orchestrator_ends_a_chain_after_full_backup_every(self):
        self.flags(full_backup_every=3, group='conductor')
        orch = backups.BackupOrchestrator(self.cfg.conf, self.cat,
                                          mock.Mock())
        full = self.link()
        self.assertEqual(full, orch._bases(['h'])[('h', 'nova')]
                         ['backup_id'])
        inc1 = self.link(base=full)
        self.assertEqual(1, orch._bases(['h'])[('h', 'nova')]['depth'])
        self.link(base=inc1)
        # full + 2 incrementals = 3: the next one reads everything.
        self.assertEqual({}, orch._bases(['h']))
        self.flags(full_backup_every=7, incremental_backups=False,
                   group='conductor')
        self.assertEqual({}, orch._bases(['h']))

    def test_space_check_expects_a_full_backup_as_large_as_the_last(self):
        self.flags(full_backup_every=3, group='conductor')
        sent = []
        orch = backups.BackupOrchestrator(
            self.cfg.conf, self.cat,
            mock.Mock(wave=lambda specs: sent.extend(specs)))
        self.cat.record_heartbeat('h', '1', {'drivers': ['nova']})
        full = self.link(size=1000)
        orch.create(['h'], ['nova'])
        # An incremental is expected as large as the last backup.
        self.assertEqual(1000, sent[-1]['params']['expected_bytes'])
        inc = self.link(base=full, size=30)
        self.assertEqual({('h', 'nova'): 30}, self.cat.last_sizes(['h']))
        self.assertEqual({('h', 'nova'): 1000},
                         self.cat.last_sizes(['h'], full=True))
        orch.create(['h'], ['nova'])
        self.assertEqual(inc, sent[-1]['params']['base']['backup_id'])
        self.assertEqual(30, sent[-1]['params']['expected_bytes'])
        self.link(base=inc, size=20)
        # The chain is full_backup_every long: the next one is full, and
        # needs the room of the last full one.
        orch.create(['h'], ['nova'])
        self.assertNotIn('base', sent[-1]['params'])
        self.assertEqual(1000, sent[-1]['params']['expected_bytes'])
        orch.create(['h'], ['nova'], full=True)
        self.assertEqual(1000, sent[-1]['params']['expected_bytes'])

    def test_no_base_in_a_backup_being_deleted(self):
        full = self.link()
        self.cat.set_backup_status(full, states.DELETING)
        self.assertEqual({}, self.cat.chain_bases(['h']))

    def test_restore_plan_carries_the_chain(self):
        full = self.link()
        inc1 = self.link(base=full)
        inc2 = self.link(base=inc1)
        backup = self.cat.get_backup(inc2)
        chains = self.cat.artifact_chains([self.artifact(inc2)['id']])
        plan = restore_plan.build(self.cfg.conf, backup, {}, [], [], chains)
        (item,) = plan['hosts']['h']['files']
        self.assertEqual({str(full), str(inc1)}, set(item['chain']))
        self.assertEqual('/s/%d/nova' % full,
                         item['chain'][str(full)]['location'])
        self.cat.set_backup_status(full, states.DELETING)
        with self.cat.session() as s:
            s.query(models.Artifact).filter_by(backup_id=full).update(
                {'status': states.CORRUPT})
        chains = self.cat.artifact_chains([self.artifact(inc2)['id']])
        err = self.assertRaises(exception.InvalidInput, restore_plan.build,
                                self.cfg.conf, backup, {}, [], [], chains)
        self.assertIn('incremental on backup %d' % full, err.message)

    def test_retention_keeps_the_bases_of_a_kept_backup(self):
        full = self.link()
        inc1 = self.link(base=full)
        self.link(base=inc1)
        # keep_last=1 keeps the newest; both older ones are its chain.
        self.assertEqual([], self.pruner.plan())

    def test_whole_expired_chain_goes_tip_first(self):
        full = self.link()
        inc1 = self.link(base=full)
        inc2 = self.link(base=inc1)
        self.link()         # a new full backup: the old chain expires
        self.assertEqual([full, inc1, inc2],
                         [e['id'] for e in self.pruner.plan()])
        self.pruner.prune()
        sent = {t['backup_id']: t for t in self.agent_api.sent}
        self.assertEqual([inc2, inc1, full],
                         [t['backup_id'] for t in self.agent_api.sent])
        # The base's objects go first: its rows stay until the backups
        # on it are forgotten, so the catalogue never has a broken chain.
        for backup_id in (full, inc2, inc1):
            self.cat.task_finished(sent[backup_id]['id'], states.SUCCEEDED,
                                   {})
            self.pruner.task_done(self.cat.get_task(sent[backup_id]['id']))
            if backup_id == full:
                self.assertEqual(prune.DELETING,
                                 self.cat.get_backup(full)['status'])
        for backup_id in (full, inc1, inc2):
            self.assertRaises(exception.NotFound, self.cat.get_backup,
                              backup_id)

    def test_base_marked_deleting_is_kept_until_its_deletes_are_sent(self):
        full = self.link()
        inc = self.link(base=full)
        self.link()         # a new full backup: the old chain expires
        self.pruner.delete(inc, force=True)
        (task,) = self.agent_api.sent
        # The base is marked DELETING, and the deletion of the backup on
        # it ends before the base's own deletes are dispatched.
        self.cat.set_backup_status(full, prune.DELETING)
        self.cat.task_finished(task['id'], states.SUCCEEDED, {})
        self.pruner.task_done(self.cat.get_task(task['id']))
        self.assertRaises(exception.NotFound, self.cat.get_backup, inc)
        self.assertEqual(prune.DELETING, self.cat.get_backup(full)['status'])
        self.pruner.delete(full, force=True)
        self.assertEqual([inc, full],
                         [t['backup_id'] for t in self.agent_api.sent])

    def test_delete_refuses_a_base_even_with_force(self):
        full = self.link()
        inc = self.link(base=full)
        err = self.assertRaises(exception.Conflict, self.pruner.delete,
                                full, True)
        self.assertIn('base of incremental backup(s) %d' % inc, err.message)
        self.pruner.delete(inc, force=True)
        # Once the backup on it is being deleted, the base may go too.
        self.pruner.delete(full, force=True)

    def test_running_incremental_protects_its_base(self):
        full = self.link()
        self.link()
        head = self.cat.chain_bases(['h'])[('h', 'nova')]
        b = self.cat.create_backup(['h'], [], 'p', ['local'])
        self.cat.create_task('backup', 'h', 'nova', {'base': head}, 60,
                             backup_id=b['id'])
        self.assertEqual({head['backup_id']}, self.cat.pending_bases())
        self.assertNotIn(head['backup_id'],
                         [e['id'] for e in self.pruner.plan()])
        self.assertIn(full, [e['id'] for e in self.pruner.plan()])
        self.assertRaises(exception.Conflict, self.pruner.delete,
                          head['backup_id'], True)

    def test_chain_safe_keeps_what_a_kept_backup_needs(self):
        backups_ = [
            {'id': 1, 'status': 'SUCCEEDED', 'artifacts': []},
            {'id': 2, 'status': 'SUCCEEDED',
             'artifacts': [{'parent_backup': 1}]},
            {'id': 3, 'status': 'SUCCEEDED',
             'artifacts': [{'parent_backup': 2}]},
            {'id': 4, 'status': prune.DELETING,
             'artifacts': [{'parent_backup': 3}]},
        ]
        self.assertEqual({1, 2, 3}, prune.chain_safe({1, 2, 3}, backups_,
                                                     set()))
        self.assertEqual({3}, prune.chain_safe({1, 3}, backups_, set()))
        self.assertEqual(set(), prune.chain_safe({1, 2, 3}, backups_, {3}))

    def test_verify_of_an_incremental_proves_its_bases(self):
        full = self.link()
        inc1 = self.link(base=full)
        inc2 = self.link(base=inc1)
        orch = verify.VerifyOrchestrator(self.cfg.conf, self.cat,
                                         self.dispatcher)
        orch.create(inc2, deep=False)
        (task,) = self.agent_api.sent
        checked = [a['id'] for a in task['params']['artifacts']]
        self.assertEqual([self.artifact(b)['id'] for b in (inc2, inc1, full)],
                         checked)
