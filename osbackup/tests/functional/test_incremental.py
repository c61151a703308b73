"""Incremental file-set backups end to end: chains, restores, deletion.

A node's tree changes between backups (files edited, deleted, added, a
mode changed); each backup after the first stores only what changed, and
restoring any backup of the chain gives exactly the tree of its moment.
"""

import os


from osbackup.tests.functional import fleet as fleet_mod
from osbackup.tests.functional import test_restore

UNITS = {'nova': ['nova-api']}


class IncrementalTest(fleet_mod.RestoreCommand, fleet_mod.FleetTestCase):

    @classmethod
    def build_fleet(cls, fleet):
        fleet_mod.make_controller_tree(fleet.node_root('ctl'))
        fleet.start_conductor(sections={
            'conductor': {'full_backup_every': 3}})
        ctl = fleet.standin_sections('ctl', UNITS)
        ctl['agent'] = {'drivers': 'nova'}
        fleet.start_agent('ctl', ctl)
        fleet.unit('ctl', 'start', 'nova-api')
        fleet.wait_for_agents([fleet.host('ctl')])

    def backup(self, *argv):
        backup, proc = self.fleet.manage_json(
            'backup', 'create', '--service', 'nova', '--wait', *argv)
        self.assertEqual('SUCCEEDED', backup['status'], proc.stderr)
        (art,) = backup['artifacts']
        return backup, art

    def assert_tree(self, snap):
        same = test_restore.test_backup.assert_same_tree
        for top in test_restore.NOVA_TREES:
            src = os.path.join(snap, top)
            dst = os.path.join(self.fleet.node_root('ctl'), top)
            same(self, src, dst)
            same(self, dst, src)

    def test_chain_backup_restore_and_delete(self):
        fleet = self.fleet
        ctl = fleet.node_root('ctl')
        first, art1 = self.backup()
        self.assertEqual('full', art1['meta']['level'])
        snap1 = test_restore.snapshot(fleet, 'ctl', 'inc1')

        with open(os.path.join(ctl, 'etc/nova/nova.conf'), 'a') as f:
            f.write('changed = 2\n')
        os.unlink(os.path.join(ctl, 'etc/nova/api-paste.ini'))
        fleet_mod.write_file(os.path.join(ctl, 'var/lib/nova/new-in-2'),
                             'two')
        second, art2 = self.backup()
        self.assertEqual(('incremental', str(first['id']), 1),
                         (art2['meta']['level'], art2['meta']['base'],
                          art2['meta']['depth']))
        self.assertEqual(art1['id'], art2['parent_id'])
        # Only the edited and the new file were read and stored.
        self.assertEqual(2, art2['meta']['stored_files'])
        self.assertLess(art2['size'], art1['size'])
        snap2 = test_restore.snapshot(fleet, 'ctl', 'inc2')

        os.chmod(os.path.join(ctl, 'etc/nova/nova.conf'), 0o600)
        fleet_mod.write_file(os.path.join(ctl, 'var/lib/nova/new-in-3'),
                             'three')
        third, art3 = self.backup()
        self.assertEqual(('incremental', 2),
                         (art3['meta']['level'], art3['meta']['depth']))
        # full_backup_every = 3: the chain is full, the next reads all.
        fourth, art4 = self.backup()
        self.assertEqual('full', art4['meta']['level'])
        self.assertIsNone(art4['parent_id'])
        self.assertEqual('incremental', self.backup()[1]['level'])
        # --full starts a new chain at once.
        self.assertEqual('full', self.backup('--full')[1]['level'])

        # Deleting a base would break the chain: refused, even forced.
        proc = fleet.manage('backup', 'delete', str(first['id']), '--force',
                            check=False)
        self.assertNotEqual(0, proc.returncode)
        self.assertIn('base of incremental backup(s) %d' % second['id'],
                      proc.stderr + proc.stdout)
        self.assertNotIn('Traceback', proc.stderr)

        # Each moment of the chain comes back exactly, deletions included.
        self.restore(second['id'])
        self.assert_tree(snap2)
        self.assertFalse(os.path.exists(
            os.path.join(ctl, 'var/lib/nova/new-in-3')))
        self.restore(first['id'])
        self.assert_tree(snap1)
        self.assertFalse(os.path.exists(
            os.path.join(ctl, 'var/lib/nova/new-in-2')))
