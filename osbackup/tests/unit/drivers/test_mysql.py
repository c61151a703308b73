"""Tests of the mysql driver against fake mysqldump and mysql clients."""

import errno
import io
import json
import os
import re
import stat
import sys
import tempfile
import time
from unittest import mock

import fixtures
import zstandard

from osbackup.drivers import base
from osbackup.drivers import mysql
from osbackup import exception
from osbackup.storage import local
from osbackup import streams
from osbackup.tests import base as test_base

PASSWORD = 's3cr3t-Pw"x'

# Prints a MariaDB 10.11 style dump of the databases on its command line,
# a copy of it to dump.sql, and its argv, option file and environment to
# mysqldump.json. FAKE_MYSQLDUMP_MODE: fail, hang, notrailer or warn.
FAKE_MYSQLDUMP = r'''
import io
import json
import os
import re
import sys
import time

state = os.environ['FAKE_MYSQL_DIR']
with open(sys.argv[1].split('=', 1)[1]) as f:
    defaults = f.read()
if '--system=users' in sys.argv:
    # FAKE_USERS_DUMP: what mariadb-dump --system=users prints.
    with open(os.path.join(state, 'mysqldump-users.json'), 'w') as f:
        json.dump({'argv': sys.argv, 'defaults': defaults}, f)
    sys.stdout.write(os.environ.get('FAKE_USERS_DUMP', ''))
    sys.exit(int(os.environ.get('FAKE_USERS_STATUS', '0')))
with open(os.path.join(state, 'mysqldump.json'), 'w') as f:
    json.dump({'argv': sys.argv, 'defaults': defaults,
               'env': dict(os.environ)}, f)
mode = os.environ.get('FAKE_MYSQLDUMP_MODE', '')
dbs = sys.argv[sys.argv.index('--databases') + 1:]
copy = open(os.path.join(state, 'dump.sql'), 'w')


def emit(text):
    sys.stdout.write(text)
    copy.write(text)


emit("""/*M!999999\\- enable the sandbox mode */
-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)
--
-- Host: localhost    Database: %s
-- ------------------------------------------------------
-- Server version\t10.11.6-MariaDB-0+deb12u2

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET NAMES utf8mb4 */;
/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;
/*!40103 SET TIME_ZONE='+00:00' */;
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;
/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;
""" % dbs[0])
if '--master-data=2' in sys.argv:
    emit("""
--
-- Position to start replication or point-in-time recovery from
--

-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000042', MASTER_LOG_POS=1337;

-- A corresponding to the above master-data CHANGE-MASTER settings to the \
slave gtid state is printed as comments later in the file.
""")
for db in dbs:
    table = {'nova': 'instances', 'mysql': 'global_priv'}.get(db, 'project')
    emit("""
--
-- Current Database: `%(db)s`
--

CREATE DATABASE /*!32312 IF NOT EXISTS*/ `%(db)s`;

USE `%(db)s`;

DROP TABLE IF EXISTS `%(t)s`;
CREATE TABLE `%(t)s` (
  `id` int(11) NOT NULL,
  `name` varchar(255) DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb3 COLLATE=utf8mb3_general_ci;

LOCK TABLES `%(t)s` WRITE;
/*!40000 ALTER TABLE `%(t)s` DISABLE KEYS */;
INSERT INTO `%(t)s` VALUES (1,'%(db)s-row-1'),
(2,'%(long)s'),
(3,'\\n-- Current Database: `keystone`\\n');
/*!40000 ALTER TABLE `%(t)s` ENABLE KEYS */;
UNLOCK TABLES;
""" % {'db': db, 't': table, 'long': db * 80})
    if db == 'nova' and os.environ.get('FAKE_BIG'):
        emit("INSERT INTO `%s` VALUES (4,'%s');\n" % (table, 'x' * 3000000))
    if db == 'mysql':
        emit('\n--\n-- Flush Grant Tables\n--\n\n/*! FLUSH PRIVILEGES */;\n')
    if mode == 'hang':
        sys.stdout.flush()
        time.sleep(60)
    if mode == 'fail':
        sys.stdout.flush()
        sys.stderr.write('mysqldump: Error 2013: Lost connection to server '
                         'during query when dumping table `%s`\n' % table)
        sys.exit(2)
for db in dbs:
    emit('\n--\n-- Current Database: `%s`\n--\n\nUSE `%s`;\n' % (db, db))
if '--master-data=2' in sys.argv:
    emit("""
-- The deferred gtid setting for slave corresponding to the master-data \
CHANGE-MASTER follows

-- Preferably use GTID to start replication from GTID position:

-- SET GLOBAL gtid_slave_pos='0-1-99';
""")
emit("""/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;

/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;
/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;
/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;
""")
if mode != 'notrailer':
    emit('\n-- Dump completed on 2024-05-01 12:00:00\n')
if mode == 'warn':
    sys.stderr.write('mysqldump: Warning: skipping table mysql.event\n')
'''

# Answers SHOW DATABASES and SELECT @@log_bin from the environment, saves
# its stdin to mysql.stdin otherwise; appends each call to mysql.calls.
FAKE_MYSQL = r'''
import io
import json
import os
import re
import sys

state = os.environ['FAKE_MYSQL_DIR']
with open(sys.argv[1].split('=', 1)[1]) as f:
    defaults = f.read()
with open(os.path.join(state, 'mysql.calls'), 'a') as f:
    f.write(json.dumps({'argv': sys.argv, 'defaults': defaults,
                        'env': dict(os.environ)}) + '\n')
if '-e' in sys.argv:
    sql = sys.argv[sys.argv.index('-e') + 1]
    if sql == 'SHOW DATABASES':
        print(os.environ['FAKE_DATABASES'].replace(',', '\n'))
    elif sql == 'SELECT @@log_bin':
        print(os.environ.get('FAKE_LOG_BIN', '0'))
    elif sql.startswith('SELECT table_schema FROM information_schema.tables '
                        "WHERE table_name = 'alembic_version'"):
        # FAKE_ALEMBIC: {database: [revision, ...]}.
        for db in json.loads(os.environ.get('FAKE_ALEMBIC') or '{}'):
            if "'%s'" % db in sql:
                print(db)
    elif 'version_num FROM' in sql:
        for db, revs in json.loads(os.environ['FAKE_ALEMBIC']).items():
            if '`%s`.alembic_version' % db in sql:
                for rev in revs:
                    print('%s\t%s' % (db, rev))
    elif sql == 'SELECT user, host, is_role FROM mysql.user':
        for row in json.loads(os.environ.get('FAKE_ACCOUNTS') or '[]'):
            print('\t'.join(row))
    elif sql.startswith('DROP USER IF EXISTS') or \
            sql.startswith('DROP ROLE IF EXISTS'):
        pass
    elif sql.startswith('SHOW GLOBAL VARIABLES WHERE') and 'wsrep_on' in sql:
        # FAKE_WSREP: {"variables": {...}, "status": {...}} of a member.
        wsrep = json.loads(os.environ.get('FAKE_WSREP') or '{}')
        for name, value in wsrep.get('variables', {'wsrep_on': 'OFF'}).items():
            print('%s\t%s' % (name, value))
    elif sql.startswith('SELECT TABLE_NAME, ENGINE FROM information_schema'):
        for row in json.loads(os.environ.get('FAKE_UNREPLICATED') or '[]'):
            print('\t'.join(row))
    elif sql.startswith('SHOW GLOBAL STATUS WHERE'):
        wsrep = json.loads(os.environ.get('FAKE_WSREP') or '{}')
        for name, value in wsrep.get('status', {}).items():
            print('%s\t%s' % (name, value))
    else:
        sys.exit('ERROR 1064 (42000): unexpected query')
else:
    data = sys.stdin.buffer.read()
    with open(os.path.join(state, 'mysql.stdin'), 'wb') as f:
        f.write(data)
    with open(os.path.join(state, 'mysql.stdin.%d' % os.getpid()),
              'wb') as f:
        f.write(data)
    if os.environ.get('FAKE_MYSQL_FAIL'):
        sys.exit("ERROR 1050 (42S01) at line 12: Table 'x' already exists")
    fail_on = os.environ.get('FAKE_MYSQL_FAIL_ON')
    if fail_on and fail_on.encode() in data:
        sys.exit("ERROR 1062 (23000) at line 3: Duplicate entry '1'")
'''


def reference_split(text):
    """Split a whole dump in memory, the obvious way, to compare with."""
    lines = text.splitlines(keepends=True)
    markers = [i for i, line in enumerate(lines)
               if line.startswith('-- Current Database: `')]
    end = len(lines)
    while end and (not lines[end - 1].strip() or
                   '@OLD_' in lines[end - 1] or
                   lines[end - 1].startswith('-- Dump completed')):
        end -= 1
    header, footer = ''.join(lines[:markers[0]]), ''.join(lines[end:])
    dumps = {}
    bounds = markers + [end]
    for start, stop in zip(bounds, bounds[1:]):
        db = lines[start].split('`')[1]
        dumps[db] = dumps.get(db, header) + ''.join(lines[start:stop])
    return {db: body + footer for db, body in dumps.items()}


class FakeClientsTestCase(test_base.TestCase):
    """A driver whose mysqldump and mysql are the fakes above."""

    def setUp(self):
        super().setUp()
        self.fake_dir = self.useFixture(fixtures.TempDir()).path
        self.store_dir = self.useFixture(fixtures.TempDir()).path
        paths = {}
        for name, script in (('mysqldump', FAKE_MYSQLDUMP),
                             ('mysql', FAKE_MYSQL)):
            paths[name] = os.path.join(self.fake_dir, name)
            with open(paths[name], 'w') as f:
                f.write('#!%s\n%s' % (sys.executable, script))
            os.chmod(paths[name], stat.S_IRWXU)
        # The accounts artifact has tests of its own (AccountsTestCase).
        self.flags(group='mysql', mysqldump_path=paths['mysqldump'],
                   mysql_path=paths['mysql'], password=PASSWORD,
                   databases=['nova', 'keystone', 'mysql'],
                   backup_accounts=False)
        for var, value in (('FAKE_MYSQL_DIR', self.fake_dir),
                           ('FAKE_DATABASES', 'information_schema,keystone,'
                            'mysql,nova,performance_schema,sys')):
            self.useFixture(fixtures.EnvironmentVariable(var, value))
        self.storage = local.LocalStorage(test_base.CONF,
                                          path=self.store_dir)
        self.progress = []
        self.ctx = base.TaskContext(
            task_id='t1', backup_id='b1', host='ctl1', service='mysql',
            storage=self.storage,
            progress=lambda n, f: self.progress.append(n))
        self.driver = mysql.MySQLDriver(test_base.CONF)

    def env(self, **variables):
        for var, value in variables.items():
            self.useFixture(fixtures.EnvironmentVariable(var, value))

    def record(self, name):
        with open(os.path.join(self.fake_dir, name)) as f:
            if name.endswith('.calls'):
                return [json.loads(line) for line in f]
            return json.load(f) if name.endswith('.json') else f.read()

    def stored_files(self):
        return sorted(os.path.join(d, n) for d, _, names
                      in os.walk(self.store_dir) for n in names)

    def read_artifact(self, location):
        # One zstd frame per section of the dump, read one after another.
        with open(location, 'rb') as f:
            return streams.decompressor(f).read()


class MySQLDriverTestCase(FakeClientsTestCase):

    def check_backup(self, binlog=None):
        artifacts = self.driver.backup(self.ctx)
        dump = self.record('dump.sql')
        expected = reference_split(dump)
        self.assertEqual(['nova', 'keystone', 'mysql'],
                         [a.name for a in artifacts])
        self.assertEqual(sorted(a.location for a in artifacts),
                         self.stored_files())
        for art in artifacts:
            self.assertEqual('sql', art.kind)
            self.assertEqual(self.ctx.key(art.name, '.sql.zst'),
                             os.path.relpath(art.location, self.store_dir))
            with open(art.location, 'rb') as f:
                self.assertEqual((art.sha256, art.size),
                                 streams.file_sha256(f))
            text = self.read_artifact(art.location).decode()
            self.assertEqual(expected[art.name], text)
            self.assertEqual({'database': art.name, 'binlog': binlog,
                              'uncompressed_size': len(text)}, art.meta)
        self.assertEqual(len(dump), sum(self.progress))
        return artifacts, expected

    def test_one_artifact_per_database(self):
        _artifacts, expected = self.check_backup()
        nova = expected['nova']
        self.assertTrue(nova.startswith('/*M!999999'))
        self.assertIn('INSERT INTO `instances` VALUES (1,', nova)
        self.assertNotIn('`project`', nova)
        self.assertNotIn('FLUSH PRIVILEGES', nova)
        self.assertIn('FLUSH PRIVILEGES', expected['mysql'])
        for text in expected.values():
            self.assertTrue(text.endswith(
                '@OLD_SQL_NOTES */;\n\n-- Dump completed on '
                '2024-05-01 12:00:00\n'))
        self.assertEqual([], self.ctx.warnings)

    def test_long_lines_and_chunk_boundaries(self):
        self.env(FAKE_BIG='1')
        self.check_backup()
        self.env(FAKE_BIG=None)
        for chunk, max_line in ((7, 128), (4096, 100), (1, 70)):
            with mock.patch.object(mysql.spawn, 'CHUNK', chunk), \
                    mock.patch.object(mysql.dumpfile, 'MAX_LINE', max_line):
                self.progress.clear()
                for art in self.check_backup()[0]:
                    self.storage.delete(art.location)

    def galera_member(self, state):
        self.env(FAKE_WSREP=json.dumps({
            'variables': {'wsrep_on': 'ON', 'wsrep_desync': 'OFF'},
            'status': {'wsrep_local_state_comment': state,
                       'wsrep_cluster_state_uuid': 'u-1', 'wsrep_ready': 'ON',
                       'wsrep_cluster_size': '3',
                       'wsrep_last_committed': '77'}}))

    def test_galera_member_dump_records_the_cluster(self):
        self.galera_member('Synced')
        for art in self.driver.backup(self.ctx):
            self.assertEqual({'cluster_uuid': 'u-1', 'seqno': 77,
                              'node': 'ctl1'}, art.meta['galera'])
        self.assertIn('--single-transaction',
                      self.record('mysqldump.json')['argv'])

    def test_galera_member_not_synced_is_refused(self):
        self.galera_member('Donor/Desynced')
        exc = self.assertRaises(exception.DumpFailed, self.driver.backup,
                                self.ctx)
        self.assertIn('Galera node ctl1 is Donor/Desynced', exc.message)
        self.assertFalse(os.path.exists(
            os.path.join(self.fake_dir, 'mysqldump.json')))
        # A restore's save of what it replaces still runs.
        self.assertEqual(1, len(self.driver.backup(self.ctx, ['nova'])))

    def test_load_on_a_member_names_tables_not_replicated(self):
        art = self.driver.backup(self.ctx)[0]
        self.env(FAKE_UNREPLICATED=json.dumps([['cache', 'Aria'],
                                               ['log', 'MyISAM']]))
        self.driver.load(self.ctx, art.location, 'nova', art.sha256)
        self.assertEqual([], self.ctx.warnings)     # not a member
        self.galera_member('Synced')
        self.driver.load(self.ctx, art.location, 'nova', art.sha256)
        (warning,) = self.ctx.warnings
        self.assertIn('nova.cache (Aria), nova.log (MyISAM) were loaded on '
                      'ctl1 only', warning)

    def test_credentials_only_in_option_file(self):
        self.driver.backup(self.ctx)
        calls = [self.record('mysqldump.json')] + self.record('mysql.calls')
        # The dump, and the queries: wsrep state, databases, alembic
        # tables, log_bin.
        self.assertEqual(5, len(calls))
        for call in calls:
            self.assertEqual('[client]\nuser="root"\n'
                             'password="s3cr3t-Pw\\"x"\n'
                             'host="localhost"\nport="3306"\n',
                             call['defaults'])
            self.assertRegex(call['argv'][1],
                             r'^--defaults-extra-file=/dev/fd/\d+$')
            self.assertNotIn('s3cr3t', ' '.join(call['argv']))
            self.assertNotIn('s3cr3t', json.dumps(call['env']))
        self.assertEqual(
            ['--single-transaction', '--quick', '--routines', '--events',
             '--triggers', '--hex-blob', '--flush-privileges',
             '--databases', 'nova', 'keystone', 'mysql'],
            calls[0]['argv'][2:])
        self.assertEqual(['--batch', '--skip-column-names', '-e',
                          'SHOW DATABASES'], calls[2]['argv'][2:])

    def test_socket_in_option_file(self):
        self.flags(group='mysql', socket='/run/my sock', host='db1')
        self.assertEqual(['nova'], self.driver.list_databases()[3:4])
        self.assertEqual('[client]\nuser="root"\npassword="s3cr3t-Pw\\"x"\n'
                         'host="localhost"\nport="3306"\n'
                         'socket="/run/my sock"\n',
                         self.record('mysql.calls')[0]['defaults'])

    def test_default_databases(self):
        self.flags(group='mysql', databases=[])
        artifacts = self.driver.backup(self.ctx)
        # The mysql schema's users and grants are the accounts artifact.
        self.assertEqual(['keystone', 'nova'], [a.name for a in artifacts])

    def test_missing_database(self):
        self.flags(group='mysql', databases=['nova', 'glance'])
        exc = self.assertRaises(exception.DumpFailed,
                                self.driver.backup, self.ctx)
        self.assertIn('glance', exc.message)
        self.assertFalse(os.path.exists(
            os.path.join(self.fake_dir, 'mysqldump.json')))

    def assertDumpFails(self, *words):
        exc = self.assertRaises(exception.DumpFailed,
                                self.driver.backup, self.ctx)
        for word in words:
            self.assertIn(word, exc.message)
        self.assertEqual([], self.stored_files())
        return exc

    def test_mysqldump_fails_midway(self):
        self.env(FAKE_MYSQLDUMP_MODE='fail')
        self.assertDumpFails('status 2', 'Lost connection to server')

    def test_missing_trailer(self):
        self.env(FAKE_MYSQLDUMP_MODE='notrailer')
        self.assertDumpFails('trailer')

    def test_mysqldump_missing(self):
        self.flags(group='mysql', mysqldump_path='/nonexistent/mysqldump')
        self.assertDumpFails('/nonexistent/mysqldump')

    def test_warning_is_kept(self):
        self.env(FAKE_MYSQLDUMP_MODE='warn')
        self.assertEqual(3, len(self.driver.backup(self.ctx)))
        self.assertEqual(['mysqldump: mysqldump: Warning: skipping table '
                          'mysql.event'], self.ctx.warnings)

    def test_storage_full(self):
        real_write = local.LocalWriter.write
        calls = []

        def write(writer, data):
            calls.append(data)
            if len(calls) > 1:
                raise exception.InsufficientSpace('No space left')
            return real_write(writer, data)

        self.useFixture(fixtures.MockPatchObject(local.LocalWriter, 'write',
                                                 write))
        self.assertRaises(exception.InsufficientSpace,
                          self.driver.backup, self.ctx)
        self.assertEqual([], self.stored_files())

    def test_cancelled(self):
        class Cancelled(exception.OsbackupError):
            pass

        def progress(nbytes, nfiles):
            if not nbytes:      # called while mysqldump is silent
                raise Cancelled('stopping')

        self.ctx.progress = progress
        self.env(FAKE_MYSQLDUMP_MODE='hang')
        started = time.monotonic()
        self.assertRaises(Cancelled, self.driver.backup, self.ctx)
        self.assertLess(time.monotonic() - started, 30)
        self.assertEqual([], self.stored_files())

    def test_commit_failure_removes_committed(self):
        real_commit = local.LocalWriter.commit

        def commit(writer):
            if 'keystone' in writer.final_path:
                raise exception.StorageError('rename failed')
            return real_commit(writer)

        self.useFixture(fixtures.MockPatchObject(local.LocalWriter,
                                                 'commit', commit))
        self.assertRaises(exception.StorageError,
                          self.driver.backup, self.ctx)
        self.assertEqual([], self.stored_files())

    def test_binlog_position(self):
        self.env(FAKE_LOG_BIN='1')
        _artifacts, expected = self.check_backup(binlog={
            'file': 'mysql-bin.000042', 'position': 1337, 'gtid': '0-1-99'})
        self.assertIn('--master-data=2', self.record('mysqldump.json')['argv'])
        for text in expected.values():
            self.assertIn("-- CHANGE MASTER TO MASTER_LOG_FILE='mysql", text)
        self.assertIn("gtid_slave_pos='0-1-99'", expected['mysql'])
        self.assertEqual([], self.ctx.warnings)

    def test_false_footer_stays_in_section(self):
        out = {}
        splitter = mysql._Splitter(
            lambda name: out.setdefault(name, io.BytesIO()))
        dump = (b'/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE */;\n--\n'
                b'-- Current Database: `a``b`\n'
                b'/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n\n'
                b'-- Dump completed on 1\nSELECT 1;\n'
                b'/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n\n'
                b'-- Dump completed on 2')
        for i in range(len(dump)):
            splitter.feed(dump[i:i + 1])
        splitter.finish()
        self.assertEqual({'a`b': dump},
                         {k: v.getvalue() for k, v in out.items()})
        self.assertTrue(splitter.completed)

    def split(self, *chunks):
        out = {}
        splitter = mysql._Splitter(
            lambda name: out.setdefault(name, io.BytesIO()))
        for chunk in chunks:
            splitter.feed(chunk)
        return splitter, out

    def test_long_line_streams_through(self):
        self.useFixture(fixtures.MockPatchObject(mysql.dumpfile, 'MAX_LINE',
                                                 16))
        splitter, out = self.split(
            b'-- Current Database: `a`\nINSERT ', b'x' * 20)
        self.assertEqual(b'-- Current Database: `a`\nINSERT ' + b'x' * 20,
                         out['a'].getvalue())
        splitter.feed(b'-- Current Database: `b`\n')
        splitter.feed(b'-- Dump completed')
        splitter.finish()
        self.assertEqual(['a'], list(out))
        self.assertTrue(out['a'].getvalue().endswith(
            b'`b`\n-- Dump completed'))
        self.assertTrue(splitter.completed)

    def test_trailer_then_more_is_incomplete(self):
        splitter, out = self.split(b'-- Current Database: `a`\n',
                                   b'-- Dump completed on 1\nSELECT 1;\n')
        splitter.finish()
        self.assertFalse(splitter.completed)
        self.assertEqual(b'-- Current Database: `a`\n-- Dump completed on '
                         b'1\nSELECT 1;\n', out['a'].getvalue())

    # -- load ----------------------------------------------------------

    def test_load_pipes_sql_into_mysql(self):
        art = self.driver.backup(self.ctx)[0]
        self.driver.load(self.ctx, art.location, 'nova', art.sha256)
        with open(os.path.join(self.fake_dir, 'mysql.stdin'), 'rb') as f:
            self.assertEqual(self.read_artifact(art.location), f.read())
        call = [c for c in self.record('mysql.calls')
                if '-e' not in c['argv']][-1]
        self.assertEqual(2, len(call['argv']))
        self.assertIn('s3cr3t', call['defaults'])

    def assertLoadRefused(self, location, database, sha256, words):
        exc = self.assertRaises(exception.ArtifactCorrupt, self.driver.load,
                                self.ctx, location, database, sha256)
        self.assertIn(words, exc.message)
        self.assertFalse(os.path.exists(
            os.path.join(self.fake_dir, 'mysql.stdin')))

    def test_load_refuses_corrupt_artifact(self):
        art = self.driver.backup(self.ctx)[0]
        with open(art.location, 'r+b') as f:
            f.seek(art.size // 2)
            byte = f.read(1)
            f.seek(art.size // 2)
            f.write(bytes([byte[0] ^ 1]))
        self.assertLoadRefused(art.location, 'nova', art.sha256,
                               'has sha256')

    def test_load_refuses_other_database(self):
        art = self.driver.backup(self.ctx)[0]
        self.assertLoadRefused(art.location, 'keystone', art.sha256,
                               'holds database(s) nova, expected keystone')

    def test_load_refuses_truncated_dump(self):
        writer = self.storage.open_writer('x/nova.sql.zst')
        hw = streams.HashingWriter(writer)
        with streams.compressor(hw) as comp:
            comp.write(b'--\n-- Current Database: `nova`\n--\nUSE `nova`;\n')
        location = writer.commit()
        self.assertLoadRefused(location, 'nova', hw.sha256, 'trailer')

    def test_load_refuses_non_dump(self):
        for data, words in ((b'not zstd', 'is not a dump'),
                            (zstandard.compress(b'SELECT 1;\n'), 'trailer')):
            writer = self.storage.open_writer('x/nova.sql.zst')
            writer.write(data)
            sha256, _size = streams.file_sha256(io.BytesIO(data))
            self.assertLoadRefused(writer.commit(), 'nova', sha256, words)

    def test_load_failure(self):
        self.env(FAKE_MYSQL_FAIL='1')
        art = self.driver.backup(self.ctx)[0]
        exc = self.assertRaises(exception.RestoreFailed, self.driver.load,
                                self.ctx, art.location, 'nova', art.sha256)
        self.assertIn("Table 'x' already exists", exc.message)

    # -- facts ---------------------------------------------------------

    def test_is_present(self):
        procs = []
        self.useFixture(fixtures.MockPatch(
            'psutil.process_iter', side_effect=lambda attrs: iter(procs)))
        self.flags(group='agent', root_path=self.fake_dir)
        self.driver = mysql.MySQLDriver(test_base.CONF)
        self.assertFalse(self.driver.is_present())
        procs.append(mock.Mock(info={'name': 'mariadbd'}))
        self.assertTrue(self.driver.is_present())
        procs.clear()
        self.flags(group='mysql', host='db.example.org')
        self.assertTrue(self.driver.is_present())
        self.flags(group='mysql', host='127.0.0.1', socket='/run/m.sock')
        self.assertTrue(self.driver.is_present())
        self.flags(group='mysql', socket=None)
        os.makedirs(os.path.join(self.fake_dir, 'var/lib/mysql/mysql'))
        self.assertTrue(self.driver.is_present())
        self.flags(group='mysql', mysqldump_path='/nonexistent/mysqldump')
        self.assertFalse(self.driver.is_present())

    def test_describe(self):
        self.assertEqual({'databases': ['keystone', 'mysql', 'nova']},
                         self.driver.describe())
        self.flags(group='mysql', mysql_path='/nonexistent/mysql')
        self.assertEqual({}, self.driver.describe())
        self.assertEqual([], self.driver.units())


# A MariaDB 10.11 dump of one database, as mysqldump lays it out: tables
# with their data and triggers, an empty table, a view (placeholder, then
# final structure in a second pass), events and routines.
SAMPLE_HEADER = b"""/*M!999999\\- enable the sandbox mode */
-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)
--
-- Host: localhost    Database: nova
-- ------------------------------------------------------

/*!40101 SET NAMES utf8mb4 */;
/*!40014 SET FOREIGN_KEY_CHECKS=0 */;
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;

"""
SAMPLE_PRE = b"""--
-- Current Database: `nova`
--

CREATE DATABASE /*!32312 IF NOT EXISTS*/ `nova`;

USE `nova`;

--
"""


def sample_table(name, rows, trigger=False):
    text = (b'-- Table structure for table `%s`\n--\n\nDROP TABLE IF EXISTS '
            b'`%s`;\nCREATE TABLE `%s` (`id` int NOT NULL);\n\n--\n'
            b'-- Dumping data for table `%s`\n--\n\nLOCK TABLES `%s` WRITE;\n'
            % ((name,) * 5))
    if rows:
        text += b'INSERT INTO `%s` VALUES\n%s;\n' % (name, b',\n'.join(
            b'(%d)' % i for i in range(rows)))
    text += b'-- a comment line in the data\nUNLOCK TABLES;\n'
    if trigger:
        text += (b'DELIMITER ;;\n/*!50003 CREATE*/ /*!50003 TRIGGER t_%s '
                 b'AFTER INSERT ON %s FOR EACH ROW\n-- not a title\n'
                 b'SET @x = 1 */;;\nDELIMITER ;\n' % (name, name))
    return text + b'\n--\n'


SAMPLE_TABLES = {b'a': sample_table(b'a', 3000, trigger=True),
                 b'b': sample_table(b'b', 10),
                 b'e': sample_table(b'e', 0),
                 b'we`ird': sample_table(b'we``ird', 5)}
SAMPLE_SERIAL = b"""-- Temporary table structure for view `v`
--

/*!50001 CREATE VIEW `v` AS SELECT 1 AS `id` */;

--
-- Dumping events for database 'nova'
--

--
-- Dumping routines for database 'nova'
--
DELIMITER ;;
CREATE PROCEDURE `p`()
SELECT 1
;;
DELIMITER ;

--
-- Current Database: `nova`
--

USE `nova`;

--
-- Final view structure for view `v`
--

/*!50001 DROP VIEW IF EXISTS `v`*/;
/*!50001 VIEW `v` AS select `a`.`id` AS `id` from `a` */;
/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;

-- Dump completed on 2024-05-01 12:00:00
"""
SAMPLE_DUMP = (SAMPLE_HEADER + SAMPLE_PRE + b''.join(SAMPLE_TABLES.values())
               + SAMPLE_SERIAL)
# What table units keep of each table: no LOCK TABLES, UNLOCK TABLES.
LOADED_TABLES = {name: re.sub(rb'(?m)^(?:LOCK TABLES `.*` WRITE|UNLOCK '
                              rb'TABLES);\n', b'', text)
                 for name, text in SAMPLE_TABLES.items()}


class SectionsTestCase(test_base.TestCase):

    def cut(self, chunk):
        sections = mysql._Sections()
        units = {}
        for start in range(0, len(SAMPLE_DUMP), chunk):
            sections.feed(SAMPLE_DUMP[start:start + chunk])
            for unit, table, data in sections.pieces:
                units.setdefault(unit, [table, b''])[1] += bytes(data)
                self.assertEqual(table, units[unit][0])
            sections.pieces = []
        sections.finish()
        for unit, table, data in sections.pieces:
            units.setdefault(unit, [table, b''])[1] += bytes(data)
        return sections, units

    def test_units(self):
        for chunk in (1, 7, 100, 4096, len(SAMPLE_DUMP)):
            sections, units = self.cut(chunk)
            # The title's opening "--" line stays before it.
            self.assertEqual(SAMPLE_HEADER + b'--\n', bytes(sections.header))
            self.assertTrue(sections.header_ok)
            self.assertEqual(
                SAMPLE_HEADER + SAMPLE_PRE + b''.join(LOADED_TABLES.values())
                + SAMPLE_SERIAL, b''.join(data for _t, data in units.values()))
            self.assertEqual([None, b'`a`', b'`b`', b'`e`', b'`we``ird`',
                              None], [t for t, _d in units.values()])
            self.assertEqual(SAMPLE_HEADER + SAMPLE_PRE, units[0][1])
            for text, unit in zip(LOADED_TABLES.values(), range(1, 5)):
                self.assertEqual(text, units[unit][1])
                self.assertNotIn(b'LOCK TABLES', text)
            self.assertEqual(SAMPLE_SERIAL, units[5][1])

    def test_no_header(self):
        sections = mysql._Sections()
        sections.feed(b'USE `x`;\n' + SAMPLE_TABLES[b'a'])
        self.assertFalse(sections.header_ok)


class ParallelLoadTestCase(MySQLDriverTestCase):

    def store(self, dump, name='nova'):
        writer = self.storage.open_writer('x/%s.sql.zst' % name)
        hw = streams.HashingWriter(writer)
        with streams.compressor(hw) as comp:
            comp.write(dump)
        return writer.commit(), hw.sha256

    def inputs(self):
        """What each fake client read, in the order they started."""
        calls = [c for c in self.record('mysql.calls') if '-e' not in
                 c['argv']]
        found = []
        for name in os.listdir(self.fake_dir):
            if name.startswith('mysql.stdin.'):
                path = os.path.join(self.fake_dir, name)
                with open(path, 'rb') as f:
                    found.append((os.stat(path).st_mtime_ns, f.read()))
        self.assertEqual(len(calls), len(found))
        return [data for _t, data in sorted(found)]

    def test_tables_load_in_parallel(self):
        self.flags(group='mysql', restore_parallelism=3)
        location, sha256 = self.store(SAMPLE_DUMP)
        check = self.useFixture(fixtures.MockPatchObject(
            mysql.MySQLDriver, '_check_artifact')).mock
        self.driver.load(self.ctx, location, 'nova', sha256, verified=True)
        check.assert_not_called()
        inputs = self.inputs()
        # First all before the tables, last the views and routines.
        self.assertEqual(SAMPLE_HEADER + SAMPLE_PRE, inputs[0])
        prologue = SAMPLE_HEADER + b'--\n\nUSE `nova`;\n'
        self.assertEqual(prologue + SAMPLE_SERIAL, inputs[-1])
        workers = inputs[1:-1]
        self.assertLessEqual(len(workers), 3)
        loaded = []
        for data in workers:
            self.assertTrue(data.startswith(prologue))
            rest = data[len(prologue):]
            for text in LOADED_TABLES.values():
                if rest.startswith(text):
                    loaded.append(text)
                    rest = rest[len(text):]
            self.assertEqual(b'', rest)
        self.assertEqual(sorted(LOADED_TABLES.values()), sorted(loaded))
        self.assertEqual(sum(map(len, inputs)) - len(prologue) * (
            len(inputs) - 1), sum(self.progress))

    def remote(self):
        """Make the storage look off-site: no direct path, reads counted."""
        opened = []
        storage = self.storage

        class Remote:
            def direct_path(self, location):
                return None

            def open_reader(self, location):
                opened.append(location)
                return storage.open_reader(location)
        self.ctx.storage = Remote()
        return opened

    def loaded_everything(self):
        inputs = self.inputs()
        self.assertEqual(SAMPLE_HEADER + SAMPLE_PRE, inputs[0])
        self.assertTrue(inputs[-1].endswith(SAMPLE_SERIAL))
        for text in LOADED_TABLES.values():
            self.assertEqual(1, sum(data.count(text) for data in inputs))

    def test_remote_artifact_is_fetched_once(self):
        self.flags(group='mysql', restore_parallelism=3)
        location, sha256 = self.store(SAMPLE_DUMP)
        opened = self.remote()
        self.driver.load(self.ctx, location, 'nova', sha256, verified=True)
        self.assertEqual([location], opened)
        self.loaded_everything()
        # The copy was an unlinked file: nothing is left behind.
        self.assertEqual([], os.listdir(os.path.join(
            test_base.CONF.state_path, 'agent', 'scratch')))

    def test_local_artifact_is_read_in_place(self):
        self.flags(group='mysql', restore_parallelism=3)
        location, sha256 = self.store(SAMPLE_DUMP)
        spool = self.useFixture(fixtures.MockPatch(
            'osbackup.drivers.mysql.load.tempfile.TemporaryFile')).mock
        self.driver.load(self.ctx, location, 'nova', sha256, verified=True)
        spool.assert_not_called()
        self.loaded_everything()

    def test_copy_that_cannot_be_written_falls_back(self):
        self.flags(group='mysql', restore_parallelism=3)
        location, sha256 = self.store(SAMPLE_DUMP)
        opened = self.remote()

        class Full(io.BytesIO):
            def write(self, data):
                raise OSError(errno.ENOSPC, 'No space left on device')
        self.useFixture(fixtures.MockPatch(
            'osbackup.drivers.mysql.load.tempfile.TemporaryFile',
            return_value=Full()))
        log = self.useFixture(fixtures.FakeLogger())
        self.driver.load(self.ctx, location, 'nova', sha256, verified=True)
        self.assertIn('each mysql client fetches it', log.output)
        # The attempt, then one read per client that loaded tables.
        self.assertGreater(len(opened), 2)
        self.loaded_everything()

    def test_lock_wait_timeout_loads_again_with_one_client(self):
        self.flags(group='mysql', restore_parallelism=3)
        location, sha256 = self.store(SAMPLE_DUMP)
        parallel = self.useFixture(fixtures.MockPatchObject(
            mysql._ParallelLoad, 'run', side_effect=exception.RestoreFailed(
                'Loading database nova failed: mysql exited with status 1: '
                'ERROR 1205 (HY000) at line 9: Lock wait timeout exceeded; '
                'try restarting transaction'))).mock
        log = self.useFixture(fixtures.FakeLogger())
        self.driver.load(self.ctx, location, 'nova', sha256, verified=True)
        parallel.assert_called_once_with()
        self.assertEqual([SAMPLE_DUMP], self.inputs())
        self.assertIn('loading database nova again with one client',
                      log.output)

    def test_retry_reads_the_copy_already_fetched(self):
        self.flags(group='mysql', restore_parallelism=3)
        location, sha256 = self.store(SAMPLE_DUMP)
        opened = self.remote()
        self.useFixture(fixtures.MockPatchObject(
            mysql._ParallelLoad, 'run', side_effect=exception.RestoreFailed(
                'mysql exited with status 1: ERROR 1213 (40001) at line 9: '
                'Deadlock found when trying to get lock')))
        self.driver.load(self.ctx, location, 'nova', sha256, verified=True)
        self.assertEqual([location], opened)
        self.assertEqual([SAMPLE_DUMP], self.inputs())

    def test_other_errors_are_not_retried(self):
        self.flags(group='mysql', restore_parallelism=3)
        location, sha256 = self.store(SAMPLE_DUMP)
        self.useFixture(fixtures.MockPatchObject(
            mysql._ParallelLoad, 'run', side_effect=exception.RestoreFailed(
                'Loading database nova failed: mysql exited with status 1: '
                'ERROR 1064 (42000) at line 9: You have an error')))
        self.assertRaisesRegex(exception.RestoreFailed, 'ERROR 1064',
                               self.driver.load, self.ctx, location, 'nova',
                               sha256, verified=True)
        self.assertFalse(any(n.startswith('mysql.stdin.')
                             for n in os.listdir(self.fake_dir)))

    def test_positional_readers_keep_their_own_offsets(self):
        with tempfile.TemporaryFile() as f:
            f.write(b'0123456789')
            f.flush()
            a = mysql._PositionalReader(f.fileno())
            b = mysql._PositionalReader(f.fileno())
            self.assertEqual(b'0123', a.read(4))
            self.assertEqual(b'01', b.read(2))
            self.assertEqual(b'456789', a.read())
            self.assertEqual(b'23456789', b.read(100))
            self.assertEqual(b'', a.read(5))

    def test_serial_setting_and_unknown_format(self):
        for parallelism, dump in ((1, SAMPLE_DUMP),
                                  (4, b'SELECT 1;\n' * 1000)):
            self.flags(group='mysql', restore_parallelism=parallelism)
            for name in os.listdir(self.fake_dir):
                if name.startswith('mysql.'):
                    os.unlink(os.path.join(self.fake_dir, name))
            location, sha256 = self.store(dump)
            self.driver.load(self.ctx, location, 'nova', sha256,
                             verified=True)
            self.assertEqual([dump], self.inputs())

    def test_failing_client_fails_the_load(self):
        self.flags(group='mysql', restore_parallelism=2)
        self.env(FAKE_MYSQL_FAIL_ON='INSERT INTO `b`')
        location, sha256 = self.store(SAMPLE_DUMP)
        exc = self.assertRaises(exception.RestoreFailed, self.driver.load,
                                self.ctx, location, 'nova', sha256,
                                verified=True)
        self.assertIn("Loading database nova failed: mysql exited with "
                      "status 1: ERROR 1062 (23000) at line 3: Duplicate "
                      "entry '1'", exc.message)
        # The views and routines wait for every table: never loaded.
        self.assertFalse(any(b'CREATE PROCEDURE' in data
                             for data in self.inputs()))

    def test_sha256_checked_while_loading(self):
        for parallelism in (1, 3):
            self.flags(group='mysql', restore_parallelism=parallelism)
            location, _sha256 = self.store(SAMPLE_DUMP)
            exc = self.assertRaises(exception.ArtifactCorrupt,
                                    self.driver.load, self.ctx, location,
                                    'nova', 'f' * 64, verified=True)
            self.assertIn('expected ffff', exc.message)
            self.assertIn('the load was stopped', exc.message)

    def test_scratch_load_renames_in_every_client(self):
        self.flags(group='mysql', restore_parallelism=2)
        location, sha256 = self.store(SAMPLE_DUMP)
        self.env(FAKE_DATABASES='nova')
        self.useFixture(fixtures.MockPatchObject(
            mysql.MySQLDriver, '_check_artifact'))
        queries = []
        self.useFixture(fixtures.MockPatchObject(
            mysql.MySQLDriver, '_query',
            side_effect=lambda sql: queries.append(sql) or []))
        self.driver.scratch_load(self.ctx, location, 'nova', sha256)
        scratch = queries[0].split('`')[1]
        self.assertTrue(scratch.startswith('osbackup_verify_'))
        inputs = self.inputs()
        self.assertIn(b'CREATE DATABASE /*!32312 IF NOT EXISTS*/ `%s`;'
                      % scratch.encode(), inputs[0])
        for data in inputs[1:]:
            self.assertIn(b'\nUSE `%s`;\n' % scratch.encode(), data)
            self.assertNotIn(b'USE `nova`', data)
