"""Restoring and recovering a real three-node Galera cluster as a cluster.

A fleet (conductor and one agent per member, real RabbitMQ and catalogue,
fleet.py) drives a private three-node cluster (galera_cluster.py). Each
agent's service manager runs galera_unit.py, so that the unit ``mariadb``
of a host is that host's private mariadbd and [galera] bootstrap_command
starts it with --wsrep-new-cluster. Every test leaves three Synced members.
"""

import json
import os
import shlex
import sys
import time

from osbackup.tests.functional import fleet as fleet_mod
from osbackup.tests.functional import galera_cluster
from osbackup.tests.functional import galera_unit

UNIT = os.path.abspath(galera_unit.__file__)
NODES = ('node0', 'node1', 'node2')
HEARD_TIMEOUT = 60
REJOIN_ATTEMPTS = 2


class GaleraRestoreTest(fleet_mod.FleetTestCase, fleet_mod.RestoreCommand):

    @classmethod
    def build_fleet(cls, fleet):
        cls.cluster = galera_cluster.GaleraCluster(
            os.path.join(fleet.dir, 'galera'))
        cls.cluster.start()
        cls.nodes = dict(zip(NODES, cls.cluster.nodes))
        cls.nodes['node0'].sql(
            'CREATE DATABASE nova; CREATE TABLE nova.instances (id INT '
            'AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40)) ENGINE=InnoDB; '
            'INSERT INTO nova.instances (name) VALUES ("a"), ("b"), ("c")')
        cls.cluster.wait_synced()
        fleet.start_conductor(sections={'mysql': {
            'galera_backup_node': fleet.host('node1')}})
        cls.sections = {}
        for name, node in cls.nodes.items():
            unit = '%s %s --node %s' % (sys.executable, UNIT, node.as_unit())
            cls.sections[name] = {
                'DEFAULT': {'service_manager': 'command'},
                'service_command': {a: '%s %s {unit}' % (unit, a)
                                    for a in ('start', 'stop', 'status')},
                'agent': {'drivers': 'mysql,mariabackup'},
                'mysql': {'socket': node.socket, 'user': 'root',
                          'databases': 'nova', 'units': 'mariadb'},
                'mariabackup': {'enabled': 'True', 'datadir': node.datadir,
                                'units': 'mariadb'},
                'galera': {'bootstrap_command': '%s bootstrap mariadb'
                           % unit,
                           'server_command': shlex.join(node.argv()),
                           # An SST of the test data takes 10-30 s.
                           'sync_timeout': '90',
                           'rejoin_attempts': str(REJOIN_ATTEMPTS)}}
            fleet.start_agent(name, cls.sections[name])
        cls.wait_heard()

    @classmethod
    def cleanup_fleet(cls):
        try:
            getattr(cls, 'cluster', None) and cls.cluster.stop()
        finally:
            super().cleanup_fleet()

    @classmethod
    def wait_heard(cls, state='Synced'):
        """Until every agent reports its member in ``state``."""
        hosts = [cls.fleet.host(n) for n in NODES]
        deadline = time.monotonic() + HEARD_TIMEOUT
        while True:
            agents = {a['host']: a for a in cls.fleet.wait_for_agents(hosts)}
            seen = {h: (agents[h].get('galera') or {}).get('state')
                    for h in hosts}
            if set(seen.values()) == {state}:
                return agents
            if time.monotonic() > deadline:
                raise AssertionError('agents do not report %s: %s'
                                     % (state, seen))
            time.sleep(1)

    def setUp(self):
        super().setUp()
        self.cluster.wait_synced()

    def sql_all(self, statement) -> dict:
        return {name: node.sql(statement)
                for name, node in self.nodes.items()}

    def checksums(self) -> dict:
        return {name: out.split('\t')[1] for name, out in self.sql_all(
            'CHECKSUM TABLE nova.instances').items()}

    def backup(self) -> int:
        backup, proc = self.fleet.manage_json(
            'backup', 'create', '--service', 'mariabackup', '--wait')
        self.assertEqual('SUCCEEDED', backup['status'], proc.stderr)
        shown, _ = self.fleet.manage_json('backup', 'show',
                                          str(backup['id']))
        (art,) = [a for a in shown['artifacts']
                  if a['service'] == 'mariabackup' and
                  a['status'] == 'available']
        self.assertEqual(self.fleet.host('node1'), art['meta']['galera']
                         ['node'])
        return backup['id']

    def fail_marker(self, name) -> str:
        return os.path.join(self.nodes[name].top, 'fail-next-start')

    def fail_starts(self, name, count) -> None:
        """The next ``count`` starts of a member's unit fail."""
        with open(self.fail_marker(name), 'w') as f:
            f.write(str(count))
        self.addCleanup(lambda: os.path.exists(self.fail_marker(name)) and
                        os.unlink(self.fail_marker(name)))

    def steps_of(self, restore, phase) -> list:
        return [(s['host'], s['action']) for s in restore['steps']
                if s['phase'] == phase]

    def test_a_dry_run_names_each_step_and_host(self):
        backup_id = self.backup()
        plan, _ = self.fleet.manage_json(
            'restore', 'create', str(backup_id), '--service', 'mariabackup',
            '--dry-run')
        n0, n1, n2 = (self.fleet.host(n) for n in NODES)
        self.assertEqual(sorted([(n0, 'stop'), (n1, 'stop'), (n2, 'stop')]),
                         sorted(self.steps_of(plan, 'cluster_stop')))
        self.assertEqual([(n1, 'bootstrap')],
                         self.steps_of(plan, 'bootstrap'))
        self.assertEqual(
            sorted([(n0, 'start'), (n2, 'start'), (n0, 'wait'), (n1, 'wait'),
                    (n2, 'wait')]), sorted(self.steps_of(plan, 'rejoin')))
        phases = [s['phase'] for s in plan['steps']]
        self.assertLess(phases.index('cluster_stop'), phases.index('replace'))
        self.assertLess(phases.index('replace'), phases.index('bootstrap'))
        self.assertLess(phases.index('bootstrap'), phases.index('rejoin'))
        # Nothing was touched.
        self.cluster.wait_synced(timeout=5)

    def test_b_member_agent_down_is_refused_before_anything(self):
        backup_id = self.backup()
        self.fleet.stop('node2')
        self.addCleanup(self.wait_heard)
        self.addCleanup(self.fleet.start_agent, 'node2',
                        self.sections['node2'])
        proc = self.fleet.manage('restore', 'create', str(backup_id),
                                 '--service', 'mariabackup', '--wait',
                                 check=False)
        self.assertEqual(2, proc.returncode, proc.stderr)
        self.assertIn('agent of member(s) %s is down' % self.fleet.host(
            'node2'), proc.stderr)
        self.assertNotIn('Traceback', proc.stderr)
        self.cluster.wait_synced(timeout=5)

    def test_c_physical_restore_bootstraps_and_all_rejoin_synced(self):
        before = self.checksums()
        backup_id = self.backup()
        self.nodes['node0'].sql('INSERT INTO nova.instances (name) VALUES '
                                '("after"); DELETE FROM nova.instances '
                                'WHERE name = "a"')
        self.cluster.wait_synced()
        self.assertNotEqual(before, self.checksums())
        # One joiner's first start fails (a transfer cut short): it is
        # started again.
        self.fail_starts('node2', 1)
        restore = self.restore(backup_id, '--service', 'mariabackup')
        self.assertFalse(os.path.exists(self.fail_marker('node2')))
        self.cluster.wait_synced(timeout=30)
        sums = self.checksums()
        self.assertEqual(1, len(set(sums.values())), sums)
        self.assertEqual(before, sums)
        for name, out in self.sql_all(
                'SELECT name FROM nova.instances ORDER BY id').items():
            self.assertEqual('a\nb\nc', out, name)
        n1 = self.fleet.host('node1')
        self.assertEqual([(n1, 'safe_to_bootstrap'), (n1, 'bootstrap'),
                          (n1, 'wait')], self.steps_of(restore, 'bootstrap'))
        for name, node in self.nodes.items():
            status = node.status()
            self.assertEqual(('Synced', '3', 'ON'), (
                status['wsrep_local_state_comment'],
                status['wsrep_cluster_size'], status['wsrep_ready']), name)
            # The old data directory of every member is kept.
            self.assertTrue([d for d in os.listdir(node.top)
                             if d.startswith('data.orig-')], name)
        self.wait_heard()

    def test_d_failed_rejoin_rolls_back_to_the_old_cluster(self):
        backup_id = self.backup()
        self.nodes['node0'].sql('INSERT INTO nova.instances (name) VALUES '
                                '("kept")')
        self.cluster.wait_synced()
        old = self.checksums()
        self.fail_starts('node2', REJOIN_ATTEMPTS)
        restore = self.restore(backup_id, '--service', 'mariabackup',
                               expect='FAILED')
        self.assertIn('rejoin failed on %s' % self.fleet.host('node2'),
                      restore['error'])
        self.assertTrue(self.steps_of(restore, 'cluster_undo'))
        self.cluster.wait_synced(timeout=60)
        self.assertEqual(old, self.checksums())
        for name, out in self.sql_all(
                'SELECT COUNT(*) FROM nova.instances WHERE name = "kept"'
        ).items():
            self.assertEqual('1', out, name)
        self.assertEqual([], restore['needs_attention'])
        self.wait_heard()

    def test_e_cluster_recover_refuses_a_running_cluster(self):
        proc = self.fleet.manage('cluster', 'recover', '--dry-run',
                                 check=False)
        self.assertEqual(2, proc.returncode)
        self.assertIn('there is no outage to recover from', proc.stderr)
        self.assertNotIn('Traceback', proc.stderr)

    def test_y_logical_restore_into_a_cluster_that_is_down(self):
        backup, proc = self.fleet.manage_json(
            'backup', 'create', '--service', 'mysql', '--wait')
        self.assertEqual('SUCCEEDED', backup['status'], proc.stderr)
        query = 'SELECT id, name FROM nova.instances ORDER BY id'
        before = self.nodes['node0'].sql(query)
        self.nodes['node0'].sql('INSERT INTO nova.instances (name) VALUES '
                                '("after the backup")')
        self.cluster.wait_synced()
        for name in NODES:
            self.nodes[name].kill()
        self.wait_heard('unreachable')
        plan, _ = self.fleet.manage_json('restore', 'create',
                                         str(backup['id']), '--service',
                                         'mysql', '--dry-run')
        dumped_on = self.fleet.host('node1')
        # The server's accounts first, then the databases.
        self.assertEqual([(dumped_on, 'rejoin', 'accounts'),
                          (dumped_on, 'rejoin', 'nova')], [
            (s['host'], s['phase'], s['target']) for s in plan['steps']
            if s['action'] == 'load'])
        self.assertEqual(3, len([s for s in plan['steps']
                                 if s['action'] == 'position']))
        restore = self.restore(backup['id'], '--service', 'mysql')
        # Recovered first (every member Synced), then loaded on one; the
        # other members have the rows by replication.
        self.assertEqual([(dumped_on, 'load')] * 2, [
            (s['host'], s['action']) for s in restore['steps']
            if s['action'] == 'load'])
        self.assertEqual([dumped_on] * 2, [
            s['host'] for s in restore['steps']
            if s['phase'] == 'rejoin' and s['action'] == 'load'])
        self.cluster.wait_synced(timeout=30)
        self.assertEqual({name: before for name in NODES},
                         self.sql_all(query))
        self.wait_heard()

    def test_z_cluster_recover_after_all_three_are_killed(self):
        node0, node1, node2 = (self.nodes[n] for n in NODES)
        node2.kill()
        self.cluster.wait_synced([node0, node1], 2)
        node0.sql('INSERT INTO nova.instances (name) VALUES ("late")')
        deadline = time.monotonic() + 30
        while (node1.status().get('wsrep_last_committed') !=
               node0.status().get('wsrep_last_committed')):
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.1)
        node1.kill()
        node0.kill()
        self.wait_heard('unreachable')
        plan, _ = self.fleet.manage_json('cluster', 'recover', '--dry-run')
        self.assertEqual(3, len(self.steps_of(plan, 'bootstrap')))
        proc = self.fleet.manage('cluster', 'recover', '--format', 'json',
                                 check=False, timeout=600)
        restore = json.loads(proc.stdout)
        self.assertEqual('SUCCEEDED', restore['status'], proc.stdout)
        self.assertIsNone(restore['backup_id'])
        booted = [s['host'] for s in restore['steps']
                  if s['phase'] == 'bootstrap' and s['action'] == 'bootstrap']
        # node2 missed the last write: it must not be the one to start.
        self.assertIn(booted, ([self.fleet.host('node0')],
                               [self.fleet.host('node1')]))
        self.cluster.wait_synced(timeout=30)
        for name, out in self.sql_all(
                'SELECT COUNT(*) FROM nova.instances WHERE name = "late"'
        ).items():
            self.assertEqual('1', out, name)
        self.wait_heard()
