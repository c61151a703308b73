"""Parallel logical restore against the real MariaDB server.

A database with what a control plane's schemas hold (foreign keys,
triggers, views on views, a procedure, an event, rows in many INSERT
statements) is dumped by the mysql driver, dropped and loaded again with
several clients; it must come back exactly, with no trigger fired by the
load. Then a client failing half-way: the load fails with the client's
error, the other clients are stopped, and the views (loaded last) never
appear. Databases are uniquely named and dropped.
"""

import os
import stat
import sys
import uuid

import fixtures
from oslo_config import fixture as config_fixture
import testtools

from osbackup.drivers import base
from osbackup.drivers import mysql
from osbackup import exception
from osbackup.storage import encrypted
from osbackup.storage import local
from osbackup.tests import base as test_base
from osbackup.tests.functional import fleet as fleet_mod

SOCKET = '/run/mysqld/mysqld.sock'

SCHEMA = [
    'CREATE TABLE instances (id INT PRIMARY KEY, uuid VARCHAR(36), '
    'hostname VARCHAR(255), note TEXT) ENGINE=InnoDB',
    'CREATE TABLE block_device_mapping (id INT PRIMARY KEY, instance_id INT,'
    ' device VARCHAR(20), CONSTRAINT fk_bdm FOREIGN KEY (instance_id) '
    'REFERENCES instances (id) ON DELETE CASCADE) ENGINE=InnoDB',
    'CREATE TABLE instance_actions (id INT AUTO_INCREMENT PRIMARY KEY, '
    'instance_id INT, action VARCHAR(40), CONSTRAINT fk_act FOREIGN KEY '
    '(instance_id) REFERENCES instances (id)) ENGINE=InnoDB',
    'CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, what '
    'VARCHAR(80)) ENGINE=InnoDB',
    'CREATE TABLE `odd``name` (id INT PRIMARY KEY, v BLOB) ENGINE=Aria',
    'CREATE TABLE empty_one (id INT) ENGINE=InnoDB',
    'CREATE TRIGGER audit_actions AFTER INSERT ON instance_actions FOR EACH '
    'ROW INSERT INTO audit (what) VALUES (CONCAT("action ", NEW.id))',
    'CREATE VIEW active AS SELECT i.id, i.hostname, b.device FROM instances '
    'i JOIN block_device_mapping b ON b.instance_id = i.id',
    'CREATE VIEW active_count AS SELECT COUNT(*) AS n FROM active',
    'CREATE PROCEDURE purge_audit() DELETE FROM audit',
    'CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DISABLE DO '
    'CALL purge_audit()',
    # Enough rows for many INSERT statements per table.
    'SET SESSION max_recursive_iterations = 100000; INSERT INTO instances '
    'WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE '
    'n < 30000) SELECT n, UUID(), CONCAT("vm-", n), REPEAT("é", n MOD 300) '
    'FROM s',
    'INSERT INTO block_device_mapping SELECT id, id, "vda" FROM instances',
    'INSERT INTO instance_actions (instance_id, action) SELECT id, "create" '
    'FROM instances WHERE id <= 20000',
    'INSERT INTO `odd``name` VALUES (1, UNHEX("00FF0A0D27")), (2, NULL)',
]

# A mysql client that fails once it has been given a table's rows (for
# the failure test); every other call runs the real client.
FAILING_CLIENT = r'''
import os
import subprocess
import sys

marker = os.environ['OSB_FAIL_MARKER'].encode()
argv = ['mysql'] + sys.argv[1:]
if '-e' in sys.argv:
    os.execvp('mysql', argv)
fds = [int(a.rsplit('/', 1)[1]) for a in sys.argv[1:]
       if a.startswith('--defaults-extra-file=/dev/fd/')]
real = subprocess.Popen(argv, stdin=subprocess.PIPE, pass_fds=fds)
for chunk in iter(lambda: sys.stdin.buffer.read(65536), b''):
    if marker in chunk:
        real.kill()
        sys.stderr.write('ERROR 2013 (HY000): Lost connection (simulated)\n')
        sys.exit(1)
    real.stdin.write(chunk)
real.stdin.close()
sys.exit(real.wait())
'''


class ParallelRestoreTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.db = 'osb_par_%s' % uuid.uuid4().hex[:8]
        self.top = self.useFixture(fixtures.TempDir()).path
        conf = self.useFixture(config_fixture.Config(test_base.CONF))
        conf.config(state_path=self.top)
        # The dump is what these tests load: no accounts artifact.
        conf.config(group='mysql', socket=SOCKET, user='root', password='',
                    databases=[self.db], restore_parallelism=3,
                    backup_accounts=False)
        self.conf = conf
        self.storage = local.LocalStorage(
            test_base.CONF, path=os.path.join(self.top, 'store'))
        self.ctx = base.TaskContext(
            task_id='t1', backup_id='1', host='db1', service='mysql',
            storage=self.storage)
        self.driver = mysql.MySQLDriver(test_base.CONF)
        self.addCleanup(fleet_mod.sql, 'DROP DATABASE IF EXISTS `%s`'
                        % self.db)
        fleet_mod.sql('CREATE DATABASE `%s`' % self.db)
        for statement in SCHEMA:
            fleet_mod.sql(statement, self.db)
        self.clients = []
        real_spawn = self.driver._spawn

        def spawn(executable, args, **kw):
            proc = real_spawn(executable, args, **kw)
            if '-e' not in args:
                self.clients.append(proc)
            return proc
        self.driver._spawn = spawn

    def state(self):
        """Every object of the database and a checksum of every table."""
        db = self.db
        tables = fleet_mod.sql(
            "SELECT table_name FROM information_schema.tables WHERE "
            "table_schema = '%s' AND table_type = 'BASE TABLE' ORDER BY 1"
            % db).splitlines()
        sums = fleet_mod.sql('CHECKSUM TABLE %s' % ', '.join(
            '`%s`.`%s`' % (db, t.replace('`', '``')) for t in tables))
        objects = fleet_mod.sql(
            "SELECT 'table', table_name, table_type FROM "
            "information_schema.tables WHERE table_schema = '{0}' UNION ALL "
            "SELECT 'trigger', trigger_name, action_statement FROM "
            "information_schema.triggers WHERE trigger_schema = '{0}' UNION "
            "ALL SELECT 'routine', routine_name, routine_definition FROM "
            "information_schema.routines WHERE routine_schema = '{0}' UNION "
            "ALL SELECT 'event', event_name, event_definition FROM "
            "information_schema.events WHERE event_schema = '{0}' UNION ALL "
            "SELECT 'fk', constraint_name, referenced_table_name FROM "
            "information_schema.referential_constraints WHERE "
            "constraint_schema = '{0}' ORDER BY 1, 2".format(db))
        views = fleet_mod.sql('SELECT * FROM active_count', db)
        return sums, objects, views

    def assert_clients(self):
        # CREATE DATABASE first, up to 3 table loaders (a loader that
        # finds every table claimed never starts a client), views etc.
        # last.
        self.assertGreaterEqual(len(self.clients), 3)
        self.assertLessEqual(len(self.clients), 5)

    def test_parallel_load_restores_everything(self):
        before = self.state()
        self.assertIn('20000', fleet_mod.sql('SELECT COUNT(*) FROM audit',
                                             self.db))
        (art,) = self.driver.backup(self.ctx)
        for verified in (True, False):
            fleet_mod.sql('DROP DATABASE `%s`' % self.db)
            del self.clients[:]
            self.driver.load(self.ctx, art.location, self.db, art.sha256,
                             verified=verified)
            self.assertEqual(before, self.state())
            self.assert_clients()
        # The audit trigger fired for none of the loaded rows.
        self.assertEqual('20000', fleet_mod.sql(
            'SELECT COUNT(*) FROM audit', self.db).strip())

    def test_encrypted_artifact_is_decrypted_once(self):
        before = self.state()
        encrypted_storage = encrypted.EncryptedStorage(
            self.storage, encrypted.Cipher(os.urandom(32)))
        opened = []
        real_open = encrypted_storage.open_reader

        def open_reader(location):
            opened.append(location)
            return real_open(location)
        encrypted_storage.open_reader = open_reader
        self.ctx.storage = encrypted_storage
        (art,) = self.driver.backup(self.ctx)
        self.assertTrue(art.location.endswith(encrypted.SUFFIX))
        fleet_mod.sql('DROP DATABASE `%s`' % self.db)
        del self.clients[:]
        self.driver.load(self.ctx, art.location, self.db, art.sha256,
                         verified=True)
        self.assertEqual(before, self.state())
        self.assert_clients()
        # One decrypting read, shared by the three table loaders.
        self.assertEqual([art.location], opened)
        self.assertEqual([], os.listdir(os.path.join(self.top, 'agent',
                                                     'scratch')))

    def test_load_over_changed_database(self):
        before = self.state()
        (art,) = self.driver.backup(self.ctx)
        fleet_mod.sql('DELETE FROM audit WHERE id > 100; DROP VIEW '
                      'active_count; CREATE TABLE extra (id INT)', self.db)
        self.driver.load(self.ctx, art.location, self.db, art.sha256,
                         verified=True)
        # A dump replaces what it holds and leaves other tables alone.
        self.assertIn('extra', fleet_mod.sql('SHOW TABLES', self.db))
        fleet_mod.sql('DROP TABLE extra', self.db)
        self.assertEqual(before, self.state())

    def test_scratch_load(self):
        (art,) = self.driver.backup(self.ctx)
        counted = self.driver.scratch_load(self.ctx, art.location, self.db,
                                           art.sha256)
        self.assertEqual({'tables': 6, 'rows': 30000 + 30000 + 20000 +
                          20000 + 2}, counted)
        self.assertNotIn('osbackup_verify', fleet_mod.sql('SHOW DATABASES'))

    def test_failing_client_stops_the_others(self):
        (art,) = self.driver.backup(self.ctx)
        fleet_mod.sql('DROP DATABASE `%s`' % self.db)
        wrapper = os.path.join(self.top, 'failing-mysql')
        with open(wrapper, 'w') as f:
            f.write('#!%s\n%s' % (sys.executable, FAILING_CLIENT))
        os.chmod(wrapper, stat.S_IRWXU)
        self.conf.config(group='mysql', mysql_path=wrapper)
        self.useFixture(fixtures.EnvironmentVariable(
            'OSB_FAIL_MARKER', 'INSERT INTO `instances`'))
        exc = self.assertRaises(exception.RestoreFailed, self.driver.load,
                                self.ctx, art.location, self.db, art.sha256,
                                verified=True)
        self.assertIn('Loading database %s failed: mysql exited with status '
                      '1: ERROR 2013 (HY000): Lost connection (simulated)'
                      % self.db, exc.message)
        for proc in self.clients:
            self.assertIsNotNone(proc.poll())
        # Routines load after every table: they never came.
        self.assertEqual('', fleet_mod.sql(
            "SELECT routine_name FROM information_schema.routines WHERE "
            "routine_schema = '%s'" % self.db))

    def test_serial_setting(self):
        before = self.state()
        (art,) = self.driver.backup(self.ctx)
        self.conf.config(group='mysql', restore_parallelism=1)
        fleet_mod.sql('DROP DATABASE `%s`' % self.db)
        del self.clients[:]
        self.driver.load(self.ctx, art.location, self.db, art.sha256)
        self.assertEqual(before, self.state())
        self.assertEqual(1, len(self.clients))
