"""Policies on a real fleet: schedules, copies off-site, pruning, swift
rings to every swift node, and deep verification that names a bad copy.

The off-site target is a real sshd on loopback (the ``ssh`` backend);
the local target is the fleet's shared storage directory.
"""

import hashlib
import os
import time
import unittest

from osbackup.tests.functional import fleet as fleet_mod
from osbackup.tests.functional import host_tools
from osbackup.tests.functional import sshd as sshd_mod


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def ssh_path(location):
    """The file behind an ssh:// location (the server is this machine)."""
    return '/' + location.split('/', 3)[3]


class PolicyTest(fleet_mod.FleetTestCase):

    skip_reason = None

    @classmethod
    def setUpClass(cls):
        # A skip raised here would hide the class's tests from the count:
        # without the ssh server each test is skipped, with the reason.
        try:
            host_tools.require(host_tools.SSHD)
        except unittest.SkipTest as exc:
            cls.skip_reason = str(exc)
            return
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        if cls.skip_reason is None:
            super().tearDownClass()

    def setUp(self):
        if self.skip_reason is not None:
            self.skipTest(self.skip_reason)
        super().setUp()

    @classmethod
    def build_fleet(cls, fleet):
        cls.sshd = sshd_mod.SSHServer()
        cls.sshd.setUp()
        cls.offsite = os.path.join(fleet.dir, 'offsite')
        ssh = {'ssh_storage': {
            'destination': cls.sshd.destination(cls.offsite),
            'port': str(cls.sshd.port),
            'identity_file': cls.sshd.identity_file,
            'known_hosts_file': cls.sshd.known_hosts}}
        fleet_mod.make_controller_tree(fleet.node_root('ctl'))
        fleet_mod.make_controller_tree(fleet.node_root('swf'))
        # The second swift node starts with other (stale) rings.
        for name in ('object.ring.gz', 'object.builder'):
            fleet_mod.write_file(os.path.join(
                fleet.node_root('swf'), 'etc/swift', name), b'stale')
        fleet.start_conductor(sections=dict(ssh, conductor={
            'run_policies': 'True', 'periodic_interval': '2'}))
        fleet.start_agent('ctl', dict(ssh, agent={
            'drivers': 'nova,swift'}))
        fleet.start_agent('swf', dict(ssh, agent={'drivers': 'swift'}))
        fleet.wait_for_agents([fleet.host('ctl'), fleet.host('swf')])

    @classmethod
    def cleanup_fleet(cls):
        super().cleanup_fleet()
        if hasattr(cls, 'sshd'):
            cls.sshd.cleanUp()

    def policy(self, name, *argv):
        policy, _ = self.fleet.manage_json('policy', 'create', name, *argv)
        self.addCleanup(self.fleet.manage, 'policy', 'delete', name,
                        check=False)
        return policy

    def wait_backup(self, backup_id, timeout=90):
        deadline = time.monotonic() + timeout
        while True:
            backup, _ = self.fleet.manage_json('backup', 'show',
                                               str(backup_id))
            if backup['status'] != 'RUNNING' or \
                    time.monotonic() > deadline:
                return backup
            time.sleep(0.5)

    def test_policy_fires_on_schedule_with_copies_on_two_targets(self):
        fleet = self.fleet
        ctl = fleet.host('ctl')
        self.policy('often', '--schedule', '* * * * *', '--keep-last', '5',
                    '--service', 'nova', '--host', ctl, '--target', 'local',
                    '--target', 'ssh')
        deadline = time.monotonic() + 150
        mine = []
        while not mine and time.monotonic() < deadline:
            time.sleep(2)
            listed, _ = fleet.manage_json('backup', 'list')
            mine = [b for b in listed if b['policy'] == 'often']
        self.assertTrue(mine, 'the policy did not fire within 150 s')
        fleet.manage('policy', 'update', 'often', '--disable')
        backup = self.wait_backup(mine[-1]['id'])
        self.assertEqual('SUCCEEDED', backup['status'])
        self.assertEqual('often', backup['policy'])
        (art,) = [a for a in backup['artifacts'] if a['status'] ==
                  'available']
        targets = {c['target']: c for c in art['copies']}
        self.assertEqual({'local', 'ssh'}, set(targets))
        self.assertEqual(art['sha256'], sha256(targets['local']['location']))
        remote = ssh_path(targets['ssh']['location'])
        self.assertTrue(remote.startswith(self.offsite))
        self.assertEqual(art['sha256'], sha256(remote))
        self.assertEqual(0o600, os.stat(remote).st_mode & 0o777)

    def test_deep_verify_names_the_bad_copy(self):
        fleet = self.fleet
        backup, _ = fleet.manage_json(
            'backup', 'create', '--host', fleet.host('ctl'), '--service',
            'nova', '--target', 'local', '--target', 'ssh', '--wait')
        self.assertEqual('SUCCEEDED', backup['status'])
        result, _ = fleet.manage_json('backup', 'verify', str(backup['id']),
                                      '--deep')
        self.assertEqual('OK', result['status'])
        self.assertEqual([], result['problems'])
        self.assertTrue(all(c['files'] > 0 for c in result['checked']))
        (art,) = backup['artifacts']
        remote = ssh_path([c for c in art['copies']
                           if c['target'] == 'ssh'][0]['location'])
        with open(remote, 'r+b') as f:
            f.seek(os.path.getsize(remote) // 2)
            byte = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([byte[0] ^ 0x10]))
        problem, result = self.deep_verify_problem(backup['id'])
        self.assertEqual(('nova', 'ssh'), (problem['artifact'],
                                           problem['copy']))
        self.assertEqual(['local'], [c['copy'] for c in result['checked']])
        shown, _ = fleet.manage_json('backup', 'show', str(backup['id']))
        self.assertEqual('CORRUPT', shown['verified']['status'])
        listed, _ = fleet.manage_json('backup', 'list')
        self.assertEqual('CORRUPT', [b for b in listed if b['id'] ==
                                     backup['id']][0]['verified']['status'])

    def test_prune_deletes_expired_backups_from_every_target(self):
        fleet = self.fleet
        self.policy('short', '--schedule', '0 0 1 1 *', '--keep-last', '1',
                    '--service', 'nova', '--host', fleet.host('ctl'),
                    '--target', 'local', '--target', 'ssh')
        made = []
        for n in range(3):
            # The first two form a chain (full, incremental on it); the
            # third starts a new one, so keep-last 1 lets the chain go.
            full = ['--full'] if n != 1 else []
            backup, _ = fleet.manage_json('backup', 'create', '--policy',
                                          'short', '--wait', *full)
            self.assertEqual('SUCCEEDED', backup['status'])
            self.assertEqual('full' if n != 1 else 'incremental',
                             backup['artifacts'][0]['level'])
            made.append(backup)
        doomed, _ = fleet.manage_json('backup', 'prune', '--dry-run')
        ids = [d['id'] for d in doomed['backups']]
        self.assertEqual([made[0]['id'], made[1]['id']],
                         [i for i in ids if i in {b['id'] for b in made}])
        # A dry run deletes nothing.
        for backup in made:
            fleet.manage_json('backup', 'show', str(backup['id']))
        pruned, _ = fleet.manage_json('backup', 'prune')
        # Every object the catalogue keeps is still stored.
        self.assertEqual([], pruned['missing'])
        for old in made[:2]:
            proc = fleet.manage('backup', 'show', str(old['id']),
                                check=False)
            self.assertEqual(2, proc.returncode)
            for copy in old['artifacts'][0]['copies']:
                path = copy['location'] if copy['target'] == 'local' \
                    else ssh_path(copy['location'])
                self.assertFalse(os.path.exists(path), path)
        kept, _ = fleet.manage_json('backup', 'show', str(made[2]['id']))
        for copy in kept['artifacts'][0]['copies']:
            path = copy['location'] if copy['target'] == 'local' \
                else ssh_path(copy['location'])
            self.assertTrue(os.path.exists(path), path)

    def test_rings_are_distributed_to_every_swift_node(self):
        fleet = self.fleet
        backup, _ = fleet.manage_json('backup', 'create', '--host',
                                      fleet.host('ctl'), '--service',
                                      'swift', '--wait')
        self.assertEqual('SUCCEEDED', backup['status'])
        etc = os.path.join(fleet.node_root('ctl'), 'etc/swift')
        want = {n: sha256(os.path.join(etc, n)) for n in os.listdir(etc)
                if n.endswith(('.ring.gz', '.builder'))}
        self.assertEqual(6, len(want))
        # The controller's live rings drift after the backup.
        fleet_mod.write_file(os.path.join(etc, 'account.ring.gz'), b'new')
        result, _ = fleet.manage_json('swift', 'distribute-rings',
                                      '--backup', str(backup['id']))
        self.assertEqual(backup['id'], result['backup_id'])
        self.assertEqual({fleet.host('ctl'), fleet.host('swf')},
                         {h['host'] for h in result['hosts']})
        for host in result['hosts']:
            self.assertEqual('SUCCEEDED', host['status'], host)
            self.assertEqual(6, len(host['files']))
        for role in ('ctl', 'swf'):
            node_etc = os.path.join(fleet.node_root(role), 'etc/swift')
            for name, digest in want.items():
                self.assertEqual(digest, sha256(os.path.join(node_etc,
                                                             name)))
            self.assertEqual([], [n for n in os.listdir(node_etc)
                                  if 'osbackup' in n])
