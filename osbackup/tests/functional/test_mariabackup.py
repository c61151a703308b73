"""The mariabackup driver against a private MariaDB server.

The test installs its own server in a temporary directory (never the
system server or /var/lib/mysql), backs it up with the driver, changes
the data, stops the server, restores the physical copy into its data
directory and starts it again on the restored files.
"""

import os
import shutil
import tempfile

from oslo_config import fixture as config_fixture
import testtools

from osbackup.agent import restore
from osbackup.drivers import base
from osbackup.drivers import mariabackup
from osbackup import exception
from osbackup.storage import local
from osbackup.tests import base as test_base
from osbackup.tests.functional import host_tools
from osbackup.tests.functional import mariadb_server


class ServerUnit:
    """The private server as the unit a restore stops and starts."""

    def __init__(self, server):
        self.server = server
        self.calls = []

    def stop(self, unit):
        self.calls.append(('stop', unit))
        self.server.stop()

    def start(self, unit):
        self.calls.append(('start', unit))
        self.server.start()

    def is_active(self, unit):
        return self.server.proc is not None and self.server.proc.poll() is None

    def exists(self, unit):
        return True


class MariaBackupFunctionalTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        host_tools.require(host_tools.MARIADB_BACKUP)
        self.top = tempfile.mkdtemp(prefix='osbackup-mariabackup-ft-')
        self.addCleanup(shutil.rmtree, self.top, ignore_errors=True)
        self.server = mariadb_server.PrivateServer(
            os.path.join(self.top, 'server'))
        self.addCleanup(self.server.stop)
        self.server.start()
        conf_fixture = self.useFixture(config_fixture.Config(test_base.CONF))
        conf_fixture.config(state_path=os.path.join(self.top, 'state'))
        conf_fixture.config(group='mysql', socket=self.server.socket,
                            user='root', password='')
        conf_fixture.config(group='mariabackup', enabled=True, parallel=2)
        self.conf_fixture = conf_fixture
        self.store = os.path.join(self.top, 'store')
        self.storage = local.LocalStorage(test_base.CONF, path=self.store)
        self.ctx = base.TaskContext(
            task_id='t1', backup_id='1', host='db1', service='mariabackup',
            storage=self.storage)
        self.driver = mariabackup.MariaBackupDriver(test_base.CONF)

    def stored_files(self):
        return sorted(os.path.join(d, n) for d, _, names
                      in os.walk(self.store) for n in names)

    def state(self):
        return self.server.sql(
            'SELECT COUNT(*), COALESCE(SUM(id), 0), '
            'COALESCE(GROUP_CONCAT(DISTINCT name ORDER BY name), "") '
            'FROM physical_test.instances')

    def test_backup_change_restore(self):
        srv = self.server
        srv.sql('CREATE DATABASE physical_test')
        srv.sql('CREATE TABLE physical_test.instances (id INT PRIMARY KEY, '
                'name VARCHAR(40)) ENGINE=InnoDB')
        srv.sql('SET SESSION max_recursive_iterations = 10000; '
                'INSERT INTO physical_test.instances WITH RECURSIVE '
                's(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE '
                'n < 5000) SELECT n, CONCAT("vm-", n MOD 7) FROM s')
        srv.sql('CREATE TABLE physical_test.aria (id INT) ENGINE=Aria')
        srv.sql('INSERT INTO physical_test.aria VALUES (1), (2)')
        backed_up = self.state()

        (art,) = self.driver.backup(self.ctx)
        self.assertEqual('physical', art.kind)
        self.assertEqual([art.location], self.stored_files())
        self.assertFalse(art.meta['galera'])
        self.assertEqual(os.path.realpath(srv.datadir),
                         os.path.realpath(art.meta['datadir']))
        self.assertTrue(art.meta['server_version'].startswith('10.'))
        self.assertTrue(art.meta['binlog']['file'].startswith('binlog.'))

        # Changes after the backup must be gone after the restore.
        srv.sql('DELETE FROM physical_test.instances WHERE id <= 2500')
        srv.sql('INSERT INTO physical_test.instances VALUES (9999, "new")')
        srv.sql('DROP TABLE physical_test.aria')
        srv.sql('CREATE TABLE physical_test.later (id INT)')
        changed = self.state()
        self.assertNotEqual(backed_up, changed)

        # A running server's data directory is refused, untouched.
        exc = self.assertRaises(exception.RestoreFailed,
                                self.driver.restore, self.ctx, art.location,
                                art.sha256, datadir=srv.datadir)
        self.assertIn('A server is running', exc.message)
        self.assertFalse(os.path.exists(srv.datadir + '.orig'))

        srv.stop()
        # A wrong checksum is refused before anything is swapped.
        before = sorted(os.listdir(srv.datadir))
        self.assertRaises(exception.ArtifactCorrupt, self.driver.restore,
                          self.ctx, art.location, '0' * 64,
                          datadir=srv.datadir)
        self.assertEqual(before, sorted(os.listdir(srv.datadir)))
        self.assertFalse(os.path.exists(srv.datadir + '.orig'))

        result = self.driver.restore(self.ctx, art.location, art.sha256,
                                     datadir=srv.datadir)
        self.assertEqual(srv.datadir + '.orig', result['orig'])
        self.assertTrue(os.path.exists(os.path.join(
            result['orig'], 'physical_test', 'later.frm')))
        self.assertEqual(['data', 'data.orig'], sorted(
            n for n in os.listdir(os.path.dirname(srv.datadir))
            if n.startswith('data') or 'osbackup' in n))

        srv.start()
        self.assertEqual(backed_up, self.state())
        self.assertEqual('1,2', srv.sql(
            'SELECT GROUP_CONCAT(id ORDER BY id) FROM physical_test.aria'))
        self.assertEqual('0', srv.sql(
            "SELECT COUNT(*) FROM information_schema.tables WHERE "
            "table_schema = 'physical_test' AND table_name = 'later'"))

    def test_backup_of_another_server_is_refused(self):
        # Pointed at a datadir that is not the connected server's, the
        # backup fails instead of copying the wrong files.
        other = os.path.join(self.top, 'not-the-datadir')
        os.makedirs(other)
        self.conf_fixture.config(group='mariabackup', datadir=other)
        exc = self.assertRaises(exception.DumpFailed, self.driver.backup,
                                self.ctx)
        self.assertIn('datadir is not %s' % other, exc.message)
        self.assertEqual([], self.stored_files())

    def test_bad_credentials_fail_cleanly(self):
        self.conf_fixture.config(group='mysql', user='nobody',
                                 password='wrong')
        exc = self.assertRaises(exception.DumpFailed, self.driver.backup,
                                self.ctx)
        self.assertIn('Access denied', exc.message)
        self.assertEqual([], self.stored_files())

    def test_agent_restore_phases(self):
        """The agent's journaled phases, on the real server and files."""
        srv = self.server
        srv.sql('CREATE DATABASE physical_test')
        srv.sql('CREATE TABLE physical_test.instances (id INT PRIMARY KEY, '
                'name VARCHAR(40))')
        srv.sql('INSERT INTO physical_test.instances VALUES (1, "a"), '
                '(2, "b")')
        backed_up = self.state()
        (art,) = self.driver.backup(self.ctx)
        srv.sql('INSERT INTO physical_test.instances VALUES (3, "c")')
        self.conf_fixture.config(group='mariabackup', datadir=srv.datadir,
                                 units=['mariadb-private'])
        self.conf_fixture.config(group='agent', unit_check_timeout=60,
                                 unit_check_settle=0)
        units = ServerUnit(srv)
        worker = restore.RestoreWorker(test_base.CONF, 'db1',
                                       {'mariabackup': self.driver},
                                       self.storage, units)
        params = {'restore_id': 4, 'backup_id': 1, 'plan': {
            'files': [], 'databases': [], 'units': ['mariadb-private'],
            'physical': [{'service': 'mariabackup',
                          'artifact': art.to_dict()}]}}
        for phase in ('prepare', 'stop', 'replace', 'start', 'check',
                      'finish'):
            getattr(worker, phase)(params, lambda b, f: None)
        self.assertEqual(backed_up, self.state())
        parent = os.path.dirname(srv.datadir)
        self.assertEqual(1, len([n for n in os.listdir(parent)
                                 if n.startswith('data.orig-')]))
        self.assertEqual([], [n for n in os.listdir(parent)
                              if 'osbackup' in n])
        self.assertEqual([('stop', 'mariadb-private'),
                          ('start', 'mariadb-private')], units.calls)
