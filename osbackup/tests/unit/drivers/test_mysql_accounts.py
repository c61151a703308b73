"""Tests of the accounts artifact and of the dumps' schema versions."""

import json
import os

from osbackup import artifact_kinds
from osbackup.drivers.mysql import accounts
from osbackup import exception
from osbackup import streams
from osbackup.tests.unit.drivers import test_mysql
from osbackup.tests.unit import test_schema_versions

# What MariaDB 10.11's mariadb-dump --system=users --insert-ignore prints
# (shortened): the server's own accounts, two service accounts, a role.
USERS_DUMP = '\n'.join([
    '/*M!999999\\- enable the sandbox mode */',
    '-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for '
    'debian-linux-gnu (x86_64)',
    '--',
    '-- Host: localhost    Database:',
    '-- ------------------------------------------------------',
    '-- Server version\t10.11.19-MariaDB-0+deb12u1',
    '',
    '/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;',
    '/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;',
    'CREATE USER IF NOT EXISTS `mariadb.sys`@`localhost` ACCOUNT LOCK '
    'PASSWORD EXPIRE;',
    'CREATE USER IF NOT EXISTS `root`@`localhost` IDENTIFIED VIA '
    'unix_socket OR mysql_native_password;',
    'CREATE USER IF NOT EXISTS `nova`@`%` IDENTIFIED BY PASSWORD '
    "'*B69027D44F6E5EDC07F1AEAD1477967B16F28227';",
    'CREATE USER IF NOT EXISTS `keystone`@`10.0.0.%` IDENTIFIED BY '
    "PASSWORD '*BB9224E47E4832767DDA2CD3054E403877C0DDCB';",
    "SELECT COALESCE(CURRENT_ROLE(),'NONE') into @current_role;",
    'CREATE ROLE IF NOT EXISTS mariadb_dump_import_role;',
    'GRANT mariadb_dump_import_role TO CURRENT_USER();',
    'SET ROLE mariadb_dump_import_role;',
    "/*!80001 CREATE ROLE IF NOT EXISTS 'nova_reader' */;",
    "/*M!100005 CREATE ROLE IF NOT EXISTS 'nova_reader' WITH ADMIN "
    'mariadb_dump_import_role */;',
    "/*M!100005 GRANT 'nova_reader' TO 'root'@'localhost' WITH ADMIN "
    'OPTION */;',
    'GRANT USAGE ON *.* TO `mariadb.sys`@`localhost`;',
    'GRANT SELECT, DELETE ON `mysql`.`global_priv` TO '
    '`mariadb.sys`@`localhost`;',
    'GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` IDENTIFIED VIA '
    'unix_socket OR mysql_native_password WITH GRANT OPTION;',
    'GRANT PROXY ON ``@`%` TO `root`@`localhost` WITH GRANT OPTION;',
    "/*M!100005 SET DEFAULT ROLE NONE FOR 'root'@'localhost' */;",
    'GRANT `nova_reader` TO `nova`@`%`;',
    'GRANT USAGE ON *.* TO `nova`@`%` IDENTIFIED BY PASSWORD '
    "'*B69027D44F6E5EDC07F1AEAD1477967B16F28227';",
    'GRANT ALL PRIVILEGES ON `nova`.* TO `nova`@`%`;',
    'GRANT ALL PRIVILEGES ON `a TO b`.* TO `keystone`@`10.0.0.%`;',
    "/*M!100005 SET DEFAULT ROLE 'nova_reader' FOR 'nova'@'%' */;",
    "/*!80001 ALTER USER 'nova'@'%' DEFAULT ROLE 'nova_reader' */;",
    'GRANT SELECT ON `nova`.* TO `nova_reader`;',
    'SET ROLE NONE;',
    'DROP ROLE mariadb_dump_import_role;',
    "/*M!100203 EXECUTE IMMEDIATE CONCAT('SET ROLE ', @current_role) */;",
    '/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;',
    '',
    '-- Dump completed on 2026-12-04 18:09:16',
    '',
])
SERVICE_LINES = [line for line in USERS_DUMP.splitlines()
                 if ('`nova' in line or "'nova" in line or 'keystone' in line)
                 and 'root' not in line]


class SubjectTestCase(test_mysql.test_base.TestCase):

    def test_statements_and_their_subjects(self):
        for line, expected in (
                ('CREATE USER IF NOT EXISTS `nova`@`%` IDENTIFIED BY x;',
                 ('user', 'nova', '%')),
                ("/*M!100005 CREATE ROLE IF NOT EXISTS 'r''x' WITH ADMIN "
                 "mariadb_dump_import_role */;", ('role', "r'x", None)),
                ('GRANT PROXY ON ``@`%` TO `root`@`localhost` WITH GRANT '
                 'OPTION;', ('grant', 'root', 'localhost')),
                ('GRANT ALL PRIVILEGES ON `a TO b`.* TO `k`@`h`;',
                 ('grant', 'k', 'h')),
                ("/*M!100005 SET DEFAULT ROLE 'r' FOR 'u'@'%' */;",
                 ('grant', 'u', '%')),
                ("/*!80001 ALTER USER 'u'@'%' DEFAULT ROLE 'r' */;",
                 ('grant', 'u', '%')),
                ('GRANT SELECT ON `nova`.* TO `nova_reader`;',
                 ('grant', 'nova_reader', None)),
                ('GRANT mariadb_dump_import_role TO CURRENT_USER();',
                 ('grant', 'CURRENT_USER()', None)),
                ('SET ROLE NONE;', None),
                ('/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE */;', None),
                ('-- Dump completed on 2026-12-04 18:09:16', None)):
            self.assertEqual(expected, accounts.subject(line), line)

    def test_default_selection_leaves_the_server_accounts_out(self):
        text, kept = accounts.select(USERS_DUMP, accounts.Selection([]))
        self.assertEqual(['nova@%', 'keystone@10.0.0.%', 'nova_reader'],
                         kept)
        for name in ('root', 'mariadb.sys'):
            self.assertNotIn('`%s`' % name, text)
            self.assertNotIn("'%s'" % name, text)
        for line in SERVICE_LINES + [
                'CREATE ROLE IF NOT EXISTS mariadb_dump_import_role;',
                'GRANT mariadb_dump_import_role TO CURRENT_USER();',
                'DROP ROLE mariadb_dump_import_role;',
                '-- Dump completed on 2026-12-04 18:09:16']:
            self.assertIn(line + '\n', text)

    def test_patterns(self):
        text, kept = accounts.select(USERS_DUMP,
                                     accounts.Selection(['nova*', 'root']))
        self.assertEqual(['root@localhost', 'nova@%', 'nova_reader'], kept)
        self.assertNotIn('keystone', text)
        self.assertIn("GRANT 'nova_reader' TO 'root'@'localhost'", text)


class AccountsTestCase(test_mysql.FakeClientsTestCase):

    def setUp(self):
        super().setUp()
        self.flags(group='mysql', backup_accounts=True,
                   databases=['nova', 'keystone'])
        self.env(FAKE_USERS_DUMP=USERS_DUMP)

    def test_backup_adds_the_accounts_artifact(self):
        artifacts = self.driver.backup(self.ctx)
        self.assertEqual(['nova', 'keystone', 'accounts'],
                         [a.name for a in artifacts])
        art = artifacts[-1]
        self.assertEqual(artifact_kinds.ACCOUNTS, art.kind)
        self.assertEqual('ctl1/b1/mysql/accounts.users.sql.zst', art.key)
        self.assertEqual(sorted(a.location for a in artifacts),
                         self.stored_files())
        with open(art.location, 'rb') as f:
            self.assertEqual((art.sha256, art.size), streams.file_sha256(f))
        text = self.read_artifact(art.location).decode()
        self.assertEqual(accounts.select(USERS_DUMP,
                                         accounts.Selection([]))[0], text)
        self.assertEqual({'accounts': ['nova@%', 'keystone@10.0.0.%',
                                       'nova_reader'],
                          'uncompressed_size': len(text)}, art.meta)

    def test_dump_command_line(self):
        self.driver.backup(self.ctx)
        call = self.record('mysqldump-users.json')
        self.assertRegex(call['argv'][1],
                         r'^--defaults-extra-file=/dev/fd/\d+$')
        self.assertEqual(['--system=users', '--insert-ignore'],
                         call['argv'][2:])
        self.assertIn('password="s3cr3t-Pw\\"x"', call['defaults'])
        self.assertNotIn('s3cr3t', ' '.join(call['argv']))
        # The databases' dump is another run, without the mysql schema.
        self.assertEqual(['--databases', 'nova', 'keystone'],
                         self.record('mysqldump.json')['argv'][-3:])

    def test_not_in_a_restore_save_nor_when_off(self):
        self.assertEqual(['nova'], [a.name for a in self.driver.backup(
            self.ctx, ['nova'])])
        self.flags(group='mysql', backup_accounts=False)
        self.assertEqual(['nova', 'keystone'],
                         [a.name for a in self.driver.backup(self.ctx)])
        self.assertFalse(os.path.exists(
            os.path.join(self.fake_dir, 'mysqldump-users.json')))

    def test_failure_fails_the_backup_and_removes_its_artifacts(self):
        for variables in ({'FAKE_USERS_STATUS': '7'},
                          {'FAKE_USERS_DUMP': 'CREATE USER x;\n'}):
            self.env(**variables)
            exc = self.assertRaises(exception.DumpFailed, self.driver.backup,
                                    self.ctx)
            self.assertIn('--system=users failed', exc.message)
            self.assertIn('backup_accounts = false', exc.message)
            self.assertEqual([], self.stored_files())
            self.env(FAKE_USERS_STATUS='0', FAKE_USERS_DUMP=USERS_DUMP)

    def test_load_command_line(self):
        art = self.driver.backup(self.ctx)[-1]
        self.driver.check_accounts(self.ctx, art.location, art.sha256)
        self.driver.load_accounts(self.ctx, art.location, art.sha256)
        with open(os.path.join(self.fake_dir, 'mysql.stdin'), 'rb') as f:
            self.assertEqual(self.read_artifact(art.location), f.read())
        call = [c for c in self.record('mysql.calls')
                if '-e' not in c['argv']][-1]
        # The client reads the statements as they are: no database, no
        # option but the credentials.
        self.assertEqual(2, len(call['argv']))
        self.assertRegex(call['argv'][1],
                         r'^--defaults-extra-file=/dev/fd/\d+$')

    def test_load_failure_is_named(self):
        art = self.driver.backup(self.ctx)[-1]
        self.env(FAKE_MYSQL_FAIL='1')
        exc = self.assertRaises(exception.RestoreFailed,
                                self.driver.load_accounts, self.ctx,
                                art.location, art.sha256)
        self.assertIn('Loading the accounts failed', exc.message)

    def store(self, text, name='x'):
        writer = self.storage.open_writer('%s/accounts.users.sql.zst' % name)
        hashing = streams.HashingWriter(writer)
        with streams.compressor(hashing) as comp:
            comp.write(text.encode())
        return writer.commit(), hashing.sha256

    def test_check_refuses_what_is_not_a_whole_accounts_dump(self):
        nova = self.driver.backup(self.ctx)[0]
        for (location, sha256), words in (
                (self.store(USERS_DUMP), None),
                (self.store(USERS_DUMP, 'y')[:1] + ('0' * 64,), 'has sha256'),
                (self.store(USERS_DUMP[:-60], 'z'), 'trailer'),
                ((nova.location, nova.sha256), 'holds a database')):
            if words is None:
                self.driver.check_accounts(self.ctx, location, sha256)
                continue
            exc = self.assertRaises(exception.ArtifactCorrupt,
                                    self.driver.check_accounts, self.ctx,
                                    location, sha256)
            self.assertIn(words, exc.message)

    def test_list_and_drop(self):
        self.env(FAKE_ACCOUNTS=json.dumps([
            ['root', 'localhost', 'N'], ['nova', '%', 'N'],
            ['nova_reader', '', 'Y'], ["o'k", 'h', 'N'],
            ['mariadb_dump_import_role', '', 'Y']]))
        listed = self.driver.list_accounts()
        self.assertEqual(['nova@%', 'nova_reader', "o'k@h"], listed)
        self.driver.drop_accounts(listed)
        statements = [c['argv'][-1] for c in self.record('mysql.calls')
                      if c['argv'][-1].startswith('DROP')]
        self.assertEqual(["DROP USER IF EXISTS 'nova'@'%'",
                          "DROP ROLE IF EXISTS 'nova_reader'",
                          "DROP USER IF EXISTS 'o\\'k'@'h'"], statements)


class SchemaVersionTestCase(test_mysql.FakeClientsTestCase):
    """Alembic revisions: recorded by a dump, checked before a load."""

    MIGRATIONS = ('usr/lib/python3/dist-packages/keystone/common/sql/'
                  'migrations/versions')

    def setUp(self):
        super().setUp()
        self.root = self.useFixture(test_mysql.fixtures.TempDir()).path
        self.flags(group='agent', root_path=self.root)
        self.flags(group='mysql', databases=['nova', 'keystone'])
        self.driver = test_mysql.mysql.MySQLDriver(test_mysql.test_base.CONF)
        self.env(FAKE_ALEMBIC=json.dumps({'keystone': ['a1']}))
        versions = os.path.join(self.root, self.MIGRATIONS)
        for rev, down in (('a1', None), ('b2', 'a1'), ('c3', 'b2')):
            test_schema_versions.write_migration(versions, rev, down)

    def test_the_dump_records_the_revision(self):
        nova, keystone = self.driver.backup(self.ctx)
        self.assertNotIn('schema_version', nova.meta)
        self.assertEqual(['a1'], keystone.meta['schema_version'])
        self.assertEqual({'nova': None, 'keystone': ['a1']},
                         self.driver.schema_revisions(['nova', 'keystone']))

    def check(self, live, dumped='b2', owner='keystone', force=False):
        self.env(FAKE_ALEMBIC=json.dumps({'keystone': live} if live
                                         else {}))
        self.driver.check_schema('keystone', {'meta': {
            'schema_version': [dumped] if dumped else None}}, owner, force)

    def test_a_newer_live_schema_is_refused_unless_forced(self):
        exc = self.assertRaises(exception.RestoreFailed, self.check, ['c3'])
        self.assertEqual('keystone: the dump has schema revision b2, the '
                         'live database c3, newer; refused (restore create '
                         '--force loads it anyway)', exc.message)
        self.check(['c3'], force=True)

    def test_an_order_it_cannot_tell_is_refused(self):
        for live, owner in ((['zz9'], 'keystone'), (['c3'], 'nova'),
                            (['c3'], None)):
            exc = self.assertRaises(exception.RestoreFailed, self.check,
                                    live, owner=owner)
            self.assertIn('cannot tell which is newer', exc.message)
            self.assertNotIn('\n', exc.message)
            self.check(live, owner=owner, force=True)

    def test_same_older_or_unknown_on_one_side_passes(self):
        self.check(['b2'])
        self.check(['a1'])          # the dump is newer: allowed
        self.check(None)            # no alembic_version table
        self.check(['c3'], dumped=None)
        self.env(FAKE_DATABASES='nova')
        self.check(['c3'])          # the database is gone
