"""The database drivers on a real three-node Galera cluster on loopback.

One cluster (galera_cluster.py: private mariadbd nodes, mariabackup SST)
serves the whole class; every test leaves it with three Synced members.
Writes run against node0 while node1 is copied.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from oslo_config import fixture as config_fixture
import testtools

from osbackup.db import api
from osbackup.drivers import base
from osbackup.drivers import galera
from osbackup.drivers import galera_recovery
from osbackup.drivers import mariabackup
from osbackup.drivers import mysql
from osbackup import exception
from osbackup.storage import local
from osbackup.tests import base as test_base
from osbackup.tests.functional import galera_cluster
from osbackup.tests.functional import host_tools

KILL_TIMEOUT = 60

# Runs a physical backup of one node in its own process, slowly (a pause
# per chunk), so that the test can SIGKILL it in the middle of the copy.
SLOW_BACKUP = r'''
import sys
import time

from osbackup.db import api
from osbackup.drivers import base
from osbackup.drivers import mariabackup
from osbackup.storage import local
from osbackup.tests import base as test_base

socket, state_path, store = sys.argv[1:4]
conf = test_base.CONF
conf([], project='osbackup', default_config_files=[])
conf.set_override('state_path', state_path)
conf.set_override('socket', socket, group='mysql')
conf.set_override('enabled', True, group='mariabackup')
ctx = base.TaskContext(
    task_id='t1', backup_id='1', host='node1', service='mariabackup',
    storage=local.LocalStorage(conf, path=store),
    progress=lambda n, f: time.sleep(0.2))
mariabackup.MariaBackupDriver(conf).backup(ctx)
'''


class GaleraTest(testtools.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        host_tools.require(host_tools.MARIADB_BACKUP)
        cls.top = tempfile.mkdtemp(prefix='osbackup-galera-ft-')
        try:
            cls.cluster = galera_cluster.GaleraCluster(cls.top)
            cls.cluster.start()
        except BaseException:
            getattr(cls, 'cluster', None) and cls.cluster.stop()
            shutil.rmtree(cls.top, ignore_errors=True)
            raise
        cls.node0, cls.node1, cls.node2 = cls.cluster.nodes
        cls.node0.sql('CREATE DATABASE nova; CREATE TABLE nova.instances '
                      '(id INT AUTO_INCREMENT PRIMARY KEY, name '
                      'VARCHAR(40)) ENGINE=InnoDB')

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()
        shutil.rmtree(cls.top, ignore_errors=True)
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.cluster.wait_synced()
        self.conf = self.useFixture(config_fixture.Config(test_base.CONF))
        self.state = tempfile.mkdtemp(dir=self.top)
        self.conf.config(state_path=self.state)
        self.conf.config(group='mariabackup', enabled=True)
        self.store = os.path.join(self.state, 'store')
        self.storage = local.LocalStorage(test_base.CONF, path=self.store)

    def on(self, node, service='mariabackup'):
        """The driver of ``service`` pointed at ``node``, and a context."""
        # The dumps are what these tests look at: no accounts artifact.
        self.conf.config(group='mysql', socket=node.socket, user='root',
                         password='', databases=['nova'],
                         backup_accounts=False)
        driver = (mariabackup.MariaBackupDriver if service == 'mariabackup'
                  else mysql.MySQLDriver)(test_base.CONF)
        ctx = base.TaskContext(task_id='t1', backup_id='1', host=node.name,
                               service=service, storage=self.storage)
        return driver, ctx

    def desync(self, node) -> str:
        return node.sql('SELECT @@wsrep_desync')

    def test_membership_is_the_same_cluster_everywhere(self):
        seen = [self.on(node, 'mysql')[0].membership()['galera']
                for node in self.cluster.nodes]
        self.assertEqual(1, len({f['cluster_uuid'] for f in seen}))
        self.assertEqual(self.node0.status()['wsrep_cluster_state_uuid'],
                         seen[0]['cluster_uuid'])
        for facts in seen:
            self.assertEqual(('Synced', 3, True, True),
                             (facts['state'], facts['size'], facts['ready'],
                              facts['primary']))

    def test_physical_copy_desyncs_under_writes_and_puts_back(self):
        stop = threading.Event()
        states, written = set(), []

        def write():
            while not stop.is_set():
                self.node0.sql("INSERT INTO nova.instances (name) "
                               "VALUES ('vm')")
                written.append(1)

        def watch():
            while not stop.is_set():
                states.add(self.node1.status().get(
                    'wsrep_local_state_comment'))
                time.sleep(0.05)
        threads = [threading.Thread(target=write),
                   threading.Thread(target=watch)]
        for t in threads:
            t.start()
        try:
            driver, ctx = self.on(self.node1)
            (art,) = driver.backup(ctx)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertIn('Donor/Desynced', states)
        self.assertEqual('0', self.desync(self.node1))
        self.assertGreater(len(written), 0)
        meta = art.meta['galera']
        self.assertEqual(
            (self.node1.status()['wsrep_cluster_state_uuid'], 'node1'),
            (meta['cluster_uuid'], meta['node']))
        self.assertGreater(meta['seqno'], 0)
        self.assertTrue(art.meta['galera_info'])
        self.assertFalse(os.path.exists(os.path.join(
            self.state, 'agent', galera.JOURNAL)))
        self.cluster.wait_synced()

    def test_failed_copy_puts_the_node_back(self):
        driver, ctx = self.on(self.node1)
        self.conf.config(group='mariabackup',
                         extra_args=['--no-such-option'])
        self.assertRaises(exception.DumpFailed, driver.backup, ctx)
        self.assertEqual('0', self.desync(self.node1))

    def test_operator_desync_is_refused_and_left_as_found(self):
        self.node2.sql('SET GLOBAL wsrep_desync=ON')
        self.addCleanup(self.node2.sql, 'SET GLOBAL wsrep_desync=OFF')
        for service in ('mysql', 'mariabackup'):
            driver, ctx = self.on(self.node2, service)
            exc = self.assertRaises(exception.DumpFailed, driver.backup, ctx)
            self.assertIn('Galera node node2 is Donor/Desynced', exc.message)
            self.assertEqual('1', self.desync(self.node2))

    def test_logical_dump_of_a_member_records_the_cluster(self):
        driver, ctx = self.on(self.node2, 'mysql')
        (art,) = driver.backup(ctx)
        self.assertEqual('node2', art.meta['galera']['node'])
        self.assertEqual(self.node2.status()['wsrep_cluster_state_uuid'],
                         art.meta['galera']['cluster_uuid'])

    def test_logical_load_on_one_member_replicates_to_all(self):
        self.node0.sql(
            'CREATE DATABASE keystone; CREATE TABLE keystone.users (id INT '
            'PRIMARY KEY, name VARCHAR(20)) ENGINE=InnoDB; CREATE TABLE '
            'keystone.cache (id INT PRIMARY KEY) ENGINE=Aria; '
            'INSERT INTO keystone.users VALUES (1, "a"), (2, "b"), (3, "c")')
        self.addCleanup(self.node0.sql, 'DROP DATABASE keystone')
        self.cluster.wait_synced()
        # Aria rows stay where they are written: on node2, the dump's source.
        self.node2.sql('INSERT INTO keystone.cache VALUES (1), (2)')
        driver, ctx = self.on(self.node2, 'mysql')
        self.conf.config(group='mysql', databases=['keystone'])
        (art,) = driver.backup(ctx)
        self.node0.sql('DELETE FROM keystone.users WHERE id > 1; '
                       'UPDATE keystone.users SET name = "z"')
        driver, ctx = self.on(self.node1, 'mysql')
        self.conf.config(group='mysql', databases=['keystone'])
        driver.load(ctx, art.location, 'keystone', art.sha256)
        (warning,) = ctx.warnings
        self.assertIn('keystone.cache (Aria) were loaded on node1 only',
                      warning)
        self.cluster.wait_synced()
        sums = {n.name: n.sql('CHECKSUM TABLE keystone.users')
                .split('\t')[1] for n in self.cluster.nodes}
        self.assertEqual(1, len(set(sums.values())), sums)
        for node in self.cluster.nodes:
            self.assertEqual('1\ta\n2\tb\n3\tc', node.sql(
                'SELECT * FROM keystone.users ORDER BY id'))
        # What the warning says: the Aria rows stayed on node1.
        self.assertEqual('2', self.node1.sql(
            'SELECT COUNT(*) FROM keystone.cache'))
        self.assertEqual('0', self.node0.sql(
            'SELECT COUNT(*) FROM keystone.cache'))

    def test_agent_killed_during_the_copy_resyncs_at_restart(self):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        proc = subprocess.Popen(
            [sys.executable, '-c', SLOW_BACKUP, self.node1.socket,
             self.state, self.store], env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(lambda: proc.poll() is None and os.killpg(
            proc.pid, signal.SIGKILL))
        journal = os.path.join(self.state, 'agent', galera.JOURNAL)
        deadline = time.monotonic() + KILL_TIMEOUT
        # The journal entry is written just before the desync: wait for
        # it and a little more, so that the copy is under way.
        while not os.path.exists(journal):
            if proc.poll() is not None:
                self.fail('the backup ended before the kill: %s'
                          % proc.stderr.read())
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        time.sleep(1)
        self.assertIsNone(proc.poll(), 'the backup ended before the kill')
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(KILL_TIMEOUT)
        self.assertEqual('1', self.desync(self.node1))
        # The next agent process: its runner's start-up recovery.
        driver, _ctx = self.on(self.node1)
        driver.recover()
        self.assertEqual('0', self.desync(self.node1))
        self.assertFalse(os.path.exists(journal))
        self.cluster.wait_synced()

    # The conductor's catalogue on the cluster, written through two nodes.
    ROUNDS = 20
    WRITES = 40

    def conflicts(self) -> int:
        total = 0
        for node in self.cluster.nodes:
            status = node.status()
            total += int(status.get('wsrep_local_cert_failures', 0))
            total += int(status.get('wsrep_local_bf_aborts', 0))
        return total

    def test_certification_conflicts_are_retried_not_lost(self):
        self.node0.sql('CREATE DATABASE IF NOT EXISTS osbackup_cat')
        self.cluster.wait_synced()
        cats = [api.Catalogue('mysql+pymysql://root@localhost/osbackup_cat'
                              '?unix_socket=%s' % node.socket)
                for node in (self.node0, self.node1)]
        cats[0].sync()
        self.cluster.wait_synced()
        errors, before = [], self.conflicts()

        def beat(cat, n):
            try:
                for i in range(self.WRITES):
                    cat.record_heartbeat('ctl1', str(n), {'n': i})
            except Exception as exc:
                errors.append(exc)
        for _round in range(self.ROUNDS):
            threads = [threading.Thread(target=beat, args=(cat, n))
                       for n, cat in enumerate(cats)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if self.conflicts() > before:
                break
        self.assertEqual([], errors)
        self.assertGreater(self.conflicts(), before,
                           'no certification conflict happened to retry')
        (agent,) = cats[1].list_agents(3600)
        self.assertEqual({'n': self.WRITES - 1}, agent['info'])

    def test_zz_recovery_after_all_members_are_killed(self):
        # Last (by name) in the class: the cluster is rebuilt here.
        self.node0.sql('CREATE DATABASE IF NOT EXISTS outage; CREATE TABLE '
                       'IF NOT EXISTS outage.t (id INT PRIMARY KEY)')
        self.cluster.wait_synced()
        self.node2.kill()
        self.cluster.wait_synced([self.node0, self.node1], 2)
        # Only node0 and node1 see these: node2 is behind. (A single
        # survivor of two loses quorum and takes no writes.)
        self.node0.sql('INSERT INTO outage.t VALUES (1), (2), (3)')
        # node1 applies node0's write asynchronously: kill it only once it
        # committed it too, or its recovered seqno is one behind.
        deadline = time.monotonic() + 30
        while (self.node1.status().get('wsrep_last_committed') !=
               self.node0.status().get('wsrep_last_committed')):
            self.assertLess(time.monotonic(), deadline,
                            'node1 did not apply node0\'s write in 30 s')
            time.sleep(0.1)
        self.node1.kill()
        self.node0.kill()
        positions = [galera_recovery.position(n.name, n.datadir, n.argv())
                     for n in self.cluster.nodes]
        seqnos = {p.host: p.seqno for p in positions}
        self.assertEqual(1, len({p.uuid for p in positions}))
        self.assertEqual(seqnos['node0'], seqnos['node1'])
        self.assertGreater(seqnos['node1'], seqnos['node2'])
        first = galera_recovery.choose_bootstrap(positions)
        self.assertEqual('node1', first.host)     # highest, then by name
        self.assertFalse(first.safe_to_bootstrap)   # a crash, not a stop
        galera_recovery.mark_safe_to_bootstrap(self.node1.datadir)
        self.node1.start(new_cluster=True)
        self.cluster.wait_synced([self.node1], 1)
        for node in (self.node0, self.node2):
            node.start()
        self.cluster.wait_synced()
        for node in self.cluster.nodes:
            self.assertEqual('1\n2\n3', node.sql(
                'SELECT id FROM outage.t ORDER BY id'))
