"""Tests of the mariabackup driver against fake server tools."""

import fcntl
import json
import os
import stat
import struct
import subprocess
import sys
import zlib

import fixtures
import zstandard

from osbackup.agent import runner as runner_mod
from osbackup.drivers import base
from osbackup.drivers import mariabackup
from osbackup import exception
from osbackup.storage import local
from osbackup import streams
from osbackup.tests import base as test_base

PASSWORD = 's3cr3t-Pw"x'

# Shared by the fakes: xbstream chunks as mariadb-backup writes them.
XBSTREAM = r'''
import struct
import zlib


def chunk(path, data=None):
    path = path.encode()
    if data is None:
        return (b'XBSTCK01\0E' + struct.pack('<I', len(path)) + path)
    return (b'XBSTCK01\0P' + struct.pack('<I', len(path)) + path +
            struct.pack('<QQI', len(data), 0, zlib.crc32(data)) + data)


def parse(data):
    files, pos = {}, 0
    while pos < len(data):
        kind = data[pos + 9:pos + 10]
        (plen,) = struct.unpack_from('<I', data, pos + 10)
        path = data[pos + 14:pos + 14 + plen].decode()
        pos += 14 + plen
        if kind == b'E':
            files.setdefault(path, b'')
            continue
        size, _off, _crc = struct.unpack_from('<QQI', data, pos)
        pos += 20
        files[path] = files.get(path, b'') + data[pos:pos + size]
        pos += size
    return files
'''

# --backup: streams FAKE_FILES (json {path: text}) and records its argv and
# option file (read twice, as mariadb-backup does). --prepare and
# --move-back work on directories. FAKE_MB_MODE: fail, unfinished,
# mismatch, prepare_fail.
FAKE_MARIABACKUP = XBSTREAM + r'''
import json
import os
import shutil
import sys

state = os.environ['FAKE_DIR']
mode = os.environ.get('FAKE_MB_MODE', '')
args = dict(a.split('=', 1) for a in sys.argv[1:] if '=' in a)
log = sys.stderr.write
if '--backup' in sys.argv:
    path = args['--defaults-extra-file']
    reads = [open(path).read() for _ in range(2)]
    sets = os.environ.get('FAKE_SETS', '')
    sets = open(sets).read().splitlines() if os.path.exists(sets) else []
    with open(os.path.join(state, 'backup.json'), 'w') as f:
        json.dump({'argv': sys.argv, 'defaults': reads,
                   'env': dict(os.environ), 'cwd': os.getcwd(),
                   'sets_before': sets, 'nice': os.nice(0)}, f)
    log('[00] Connecting to MariaDB server host: localhost\n')
    if mode == 'mismatch':
        log("[00] Warning: option 'datadir' has different values:\n")
    for name, text in json.loads(os.environ['FAKE_FILES']).items():
        data = text.encode()
        sys.stdout.buffer.write(chunk(name, data) + chunk(name))
        log('[01] Streaming ./%s to <STDOUT>\n[01]         ...done\n' % name)
    sys.stdout.flush()
    if mode == 'fail':
        log('[00] Error: failed to execute query FLUSH TABLES WITH READ '
            'LOCK: Lock wait timeout exceeded\n')
        sys.exit(1)
    log("[00] MySQL binlog position: filename 'mysql-bin.000007', "
        "position '1234', GTID of the last change '0-1-42'\n")
    if mode != 'unfinished':
        log('[00] completed OK!\n')
elif '--prepare' in sys.argv:
    if mode == 'prepare_fail':
        log('[00] Error: cannot open ./ibdata1\n')
        sys.exit(1)
    open(os.path.join(args['--target-dir'], 'prepared'), 'w').close()
    log('[00] completed OK!\n')
elif '--move-back' in sys.argv:
    target, datadir = args['--target-dir'], args['--datadir']
    with open(os.path.join(state, 'move-back.json'), 'w') as f:
        json.dump(sys.argv, f)
    assert not os.listdir(datadir), 'datadir not empty'
    for name in os.listdir(target):
        if name != 'backup-my.cnf':
            shutil.move(os.path.join(target, name),
                        os.path.join(datadir, name))
    log('[00] completed OK!\n')
'''

FAKE_MBSTREAM = XBSTREAM + r'''
import os
import sys

top = sys.argv[sys.argv.index('-C') + 1]
for path, data in parse(sys.stdin.buffer.read()).items():
    full = os.path.join(top, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, 'wb') as f:
        f.write(data)
'''

# Answers SHOW GLOBAL VARIABLES from FAKE_VARIABLES and SHOW GLOBAL STATUS
# from FAKE_STATUS (json); appends every SET statement to FAKE_SETS.
FAKE_MYSQL = r'''
import json
import os
import sys

sql = sys.argv[sys.argv.index('-e') + 1]
if sql.startswith('SET '):
    with open(os.environ['FAKE_SETS'], 'a') as f:
        f.write(sql + '\n')
    sys.exit(1 if os.environ.get('FAKE_SET_FAILS') else 0)
which = 'FAKE_STATUS' if sql.startswith('SHOW GLOBAL STATUS') else \
    'FAKE_VARIABLES'
assert sql.startswith('SHOW GLOBAL'), sql
for name, value in json.loads(os.environ.get(which) or '{}').items():
    print('%s\t%s' % (name, value))
'''

FILES = {'ibdata1': 'system tablespace', 'nova/instances.ibd': 'rows',
         'backup-my.cnf': '[mysqld]\n', 'xtrabackup_info': 'info'}


def chunk(path, data=None):
    path = path.encode()
    if data is None:
        return b'XBSTCK01\0E' + struct.pack('<I', len(path)) + path
    return (b'XBSTCK01\0P' + struct.pack('<I', len(path)) + path +
            struct.pack('<QQI', len(data), 0, zlib.crc32(data)) + data)


def hold_lock(test, path):
    """Lock ``path`` from a child process; return what releases it.

    POSIX locks are per process, so a child holds it, as mariadbd does.
    The lock goes at the latest when the test ends.
    """
    holder = subprocess.Popen(
        [sys.executable, '-c',
         'import fcntl, os, sys\n'
         'fd = os.open(sys.argv[1], os.O_RDWR)\n'
         'fcntl.lockf(fd, fcntl.LOCK_EX)\n'
         'print("locked", flush=True)\n'
         'sys.stdin.read()\n', path],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    test.addCleanup(holder.wait)
    test.addCleanup(holder.stdin.close)
    test.assertEqual(b'locked\n', holder.stdout.readline())

    def release():
        holder.stdin.close()
        holder.wait()
    return release


class StreamGuardTestCase(test_base.TestCase):

    def feed(self, data, step=None):
        guard = mariabackup._StreamGuard()
        step = step or len(data) or 1
        for pos in range(0, len(data), step):
            guard.feed(data[pos:pos + step])
        guard.finish()
        return guard

    def test_accepts_chunks_split_anywhere(self):
        data = (chunk('ibdata1', b'x' * 100) + chunk('ibdata1') +
                chunk('nova/a.ibd', b'') + chunk('nova/a.ibd'))
        for step in (1, 3, 14, 50, len(data)):
            self.assertEqual({'ibdata1', 'nova/a.ibd'},
                             self.feed(data, step).files)

    def test_refuses_escaping_paths(self):
        for path in ('../etc/passwd', '/etc/passwd', 'nova/../../x', ''):
            self.assertRaises(exception.UnsafeArchive, self.feed,
                              chunk('ibdata1', b'x') + chunk(path, b'y'))

    def test_refuses_bad_or_truncated_streams(self):
        good = chunk('ibdata1', b'x' * 10)
        for data in (b'not an xbstream at all', good[:-3], good[:20],
                     b'XBSTCK01\0Z' + good[10:], b''):
            self.assertRaises(exception.ArtifactCorrupt, self.feed, data)


class FakeTools(fixtures.Fixture):
    """Fake mariadb-backup, mbstream and mysql, configured for ``test``."""

    def __init__(self, test):
        super().__init__()
        self.test = test

    def _setUp(self):
        test = self.test
        self.dir = self.useFixture(fixtures.TempDir()).path
        paths = {}
        for name, script in (('mariadb-backup', FAKE_MARIABACKUP),
                             ('mbstream', FAKE_MBSTREAM),
                             ('mysql', FAKE_MYSQL)):
            paths[name] = os.path.join(self.dir, name)
            with open(paths[name], 'w') as f:
                f.write('#!%s\n%s' % (sys.executable, script))
            os.chmod(paths[name], stat.S_IRWXU)
        test.flags(group='mysql', mysql_path=paths['mysql'],
                   password=PASSWORD, socket='/run/fake.sock')
        test.flags(group='mariabackup', enabled=True,
                   mariabackup_path=paths['mariadb-backup'],
                   mbstream_path=paths['mbstream'])
        self.variables = {'datadir': '/var/lib/mysql/',
                          'version': '10.11.19-MariaDB', 'wsrep_on': 'OFF',
                          'log_bin': 'ON'}
        for var, value in (('FAKE_DIR', self.dir),
                           ('FAKE_FILES', json.dumps(FILES)),
                           ('FAKE_VARIABLES', json.dumps(self.variables)),
                           ('FAKE_SETS', os.path.join(self.dir, 'sets'))):
            self.useFixture(fixtures.EnvironmentVariable(var, value))


class DriverTestBase(test_base.TestCase):
    """The driver with fake tools, a local store and a task context."""

    def setUp(self):
        super().setUp()
        tools = self.useFixture(FakeTools(self))
        self.fake_dir = tools.dir
        self.variables = tools.variables
        self.store_dir = self.useFixture(fixtures.TempDir()).path
        self.top = self.useFixture(fixtures.TempDir()).path
        self.datadir = os.path.join(self.top, 'mysql')
        self.storage = local.LocalStorage(test_base.CONF,
                                          path=self.store_dir)
        self.progress = []
        self.ctx = base.TaskContext(
            task_id='t1', backup_id='b1', host='db1', service='mariabackup',
            storage=self.storage,
            progress=lambda n, f: self.progress.append(n))
        self.driver = mariabackup.MariaBackupDriver(test_base.CONF)

    def env(self, **variables):
        for var, value in variables.items():
            self.useFixture(fixtures.EnvironmentVariable(var, value))

    def stored_files(self):
        return sorted(os.path.join(d, n) for d, _, names
                      in os.walk(self.store_dir) for n in names)

    def record(self, name):
        with open(os.path.join(self.fake_dir, name)) as f:
            return json.load(f)


class MariaBackupDriverTestCase(DriverTestBase):

    # -- arguments -----------------------------------------------------

    def test_args_galera_auto(self):
        facts = dict(self.variables)
        self.assertEqual(['--backup', '--stream=xbstream',
                          '--datadir=/var/lib/mysql/', '--parallel=1'],
                         self.driver.backup_args(facts))
        facts['wsrep_on'] = 'ON'
        self.assertIn('--galera-info', self.driver.backup_args(facts))
        del facts['wsrep_on']       # a server built without wsrep
        self.assertNotIn('--galera-info', self.driver.backup_args(facts))

    def test_args_galera_forced_and_options(self):
        self.flags(group='mariabackup', galera_info='off', parallel=4,
                   datadir='/srv/db', extra_args=['--ftwrl-wait-timeout=5'])
        args = self.driver.backup_args({'datadir': '/var/lib/mysql/',
                                        'wsrep_on': 'ON'})
        self.assertEqual(['--backup', '--stream=xbstream',
                          '--datadir=/srv/db', '--parallel=4',
                          '--ftwrl-wait-timeout=5'], args)
        self.flags(group='mariabackup', galera_info='on')
        self.assertIn('--galera-info',
                      self.driver.backup_args({'wsrep_on': 'OFF'}))

    def test_server_facts_and_galera_detection(self):
        self.variables['wsrep_on'] = 'ON'
        self.env(FAKE_VARIABLES=json.dumps(self.variables))
        facts = self.driver.server_facts()
        self.assertEqual(self.variables, facts)
        self.assertTrue(self.driver.galera(facts))

    def test_not_present_unless_enabled(self):
        self.assertTrue(self.driver.is_present())
        self.flags(group='mariabackup', enabled=False)
        self.assertFalse(self.driver.is_present())
        self.flags(group='mariabackup', enabled=True,
                   mariabackup_path='/nonexistent/mariadb-backup')
        self.assertFalse(self.driver.is_present())

    # -- backup --------------------------------------------------------

    def test_backup_one_physical_artifact(self):
        (art,) = self.driver.backup(self.ctx)
        self.assertEqual('physical', art.kind)
        self.assertEqual([art.location], self.stored_files())
        self.assertEqual(self.ctx.key('mariabackup', '.xbstream.zst'),
                         os.path.relpath(art.location, self.store_dir))
        with open(art.location, 'rb') as f:
            self.assertEqual((art.sha256, art.size), streams.file_sha256(f))
        with open(art.location, 'rb') as f:
            data = zstandard.ZstdDecompressor().stream_reader(f).read()
        expected = b''.join(chunk(n, t.encode()) + chunk(n)
                            for n, t in FILES.items())
        self.assertEqual(expected, data)
        self.assertEqual(len(data), sum(self.progress))
        self.assertEqual({'server_version': '10.11.19-MariaDB',
                          'datadir': '/var/lib/mysql/', 'galera': None,
                          'galera_info': False,
                          'binlog': {'file': 'mysql-bin.000007',
                                     'position': 1234, 'gtid': '0-1-42'},
                          'uncompressed_size': len(data),
                          'format': 'xbstream'}, art.meta)

    def test_nice_ionice_and_throttle_of_the_copy(self):
        before = os.nice(0)
        self.flags(group='mariabackup', nice=15, ionice_class='idle',
                   throttle=4)
        self.assertEqual(['nice', '-n', '15', 'ionice', '-c', '3'],
                         self.driver.priority())
        (art,) = self.driver.backup(self.ctx)
        rec = self.record('backup.json')
        self.assertEqual(min(19, before + 15), rec['nice'])
        self.assertIn('--throttle=4', rec['argv'])
        # The option file is still the one mariadb-backup reads.
        self.assertIn('socket="/run/fake.sock"', rec['defaults'][0])
        self.assertEqual(before, os.nice(0))    # the agent is not reniced
        self.flags(group='mariabackup', nice=0, ionice_class='best-effort')
        self.assertEqual(['ionice', '-c', '2', '-n', '7'],
                         self.driver.priority())

    def test_credentials_in_a_rereadable_option_file_only(self):
        self.driver.backup(self.ctx)
        rec = self.record('backup.json')
        first, second = rec['defaults']
        self.assertEqual(first, second)
        self.assertIn('password="s3cr3t-Pw\\"x"', first)
        self.assertIn('socket="/run/fake.sock"', first)
        self.assertTrue(rec['argv'][1].startswith('--defaults-extra-file='))
        self.assertNotIn(PASSWORD, ' '.join(rec['argv']))
        self.assertNotIn(PASSWORD, json.dumps(rec['env']))
        # Its scratch directory is gone afterwards.
        self.assertFalse(os.path.exists(rec['cwd']))

    def test_failure_reports_stderr_tail_and_keeps_nothing(self):
        self.env(FAKE_MB_MODE='fail')
        exc = self.assertRaises(exception.DumpFailed, self.driver.backup,
                                self.ctx)
        self.assertIn('exited with status 1', exc.message)
        self.assertIn('Lock wait timeout exceeded', exc.message)
        self.assertNotIn('Traceback', exc.message)
        self.assertEqual([], self.stored_files())

    def test_unfinished_log_fails(self):
        self.env(FAKE_MB_MODE='unfinished')
        exc = self.assertRaises(exception.DumpFailed, self.driver.backup,
                                self.ctx)
        self.assertIn('completed OK!', exc.message)
        self.assertEqual([], self.stored_files())

    def test_other_server_reached_fails(self):
        self.env(FAKE_MB_MODE='mismatch')
        exc = self.assertRaises(exception.DumpFailed, self.driver.backup,
                                self.ctx)
        self.assertIn('datadir is not /var/lib/mysql/', exc.message)
        self.assertEqual([], self.stored_files())

    def test_missing_executable_is_a_clean_error(self):
        self.flags(group='mariabackup',
                   mariabackup_path='/nonexistent/mariadb-backup')
        exc = self.assertRaises(exception.DumpFailed, self.driver.backup,
                                self.ctx)
        self.assertIn('Cannot run /nonexistent/mariadb-backup', exc.message)
        self.assertEqual([], self.stored_files())

    # -- restore -------------------------------------------------------

    def make_datadir(self, content='old'):
        os.makedirs(self.datadir)
        with open(os.path.join(self.datadir, 'ibdata1'), 'w') as f:
            f.write(content)
        os.chmod(self.datadir, 0o751)

    def leftovers(self):
        return sorted(n for n in os.listdir(self.top) if 'osbackup' in n)

    def read(self, *parts):
        with open(os.path.join(*parts)) as f:
            return f.read()

    def test_restore_swaps_in_prepared_copy(self):
        (art,) = self.driver.backup(self.ctx)
        self.make_datadir()
        result = self.driver.restore(self.ctx, art.location, art.sha256,
                                     datadir=self.datadir)
        orig = self.datadir + '.orig'
        self.assertEqual({'datadir': self.datadir, 'orig': orig}, result)
        self.assertEqual('system tablespace',
                         self.read(self.datadir, 'ibdata1'))
        self.assertEqual('rows', self.read(self.datadir, 'nova',
                                           'instances.ibd'))
        self.assertTrue(os.path.exists(os.path.join(self.datadir,
                                                    'prepared')))
        self.assertEqual('old', self.read(orig, 'ibdata1'))
        self.assertEqual(0o751, stat.S_IMODE(os.stat(self.datadir).st_mode))
        self.assertEqual([], self.leftovers())
        argv = self.record('move-back.json')
        fresh = [a for a in argv if a.startswith('--datadir=')][0][10:]
        self.assertEqual(self.top, os.path.dirname(fresh))
        self.assertIn('--innodb-log-group-home-dir=%s' % fresh, argv)
        # A second restore keeps the first .orig and adds a stamped one.
        result = self.driver.restore(self.ctx, art.location, art.sha256,
                                     datadir=self.datadir)
        self.assertTrue(result['orig'].startswith(orig + '-'))
        self.assertEqual('old', self.read(orig, 'ibdata1'))

    def test_restore_into_missing_datadir(self):
        (art,) = self.driver.backup(self.ctx)
        result = self.driver.restore(self.ctx, art.location, art.sha256,
                                     datadir=self.datadir)
        self.assertIsNone(result['orig'])
        self.assertEqual('rows', self.read(self.datadir, 'nova',
                                           'instances.ibd'))

    def assert_untouched(self):
        self.assertEqual(['ibdata1'], os.listdir(self.datadir))
        self.assertEqual('old', self.read(self.datadir, 'ibdata1'))
        self.assertFalse(os.path.exists(self.datadir + '.orig'))
        self.assertEqual([], self.leftovers())

    def test_restore_corrupt_artifact_touches_nothing(self):
        (art,) = self.driver.backup(self.ctx)
        self.make_datadir()
        exc = self.assertRaises(exception.ArtifactCorrupt,
                                self.driver.restore, self.ctx, art.location,
                                'f' * 64, datadir=self.datadir)
        self.assertIn('sha256', exc.message)
        self.assert_untouched()
        with open(art.location, 'r+b') as f:
            f.seek(art.size // 2)
            byte = f.read(1)
            f.seek(art.size // 2)
            f.write(bytes([byte[0] ^ 0xff]))
        self.assertRaises(exception.ArtifactCorrupt, self.driver.restore,
                          self.ctx, art.location, art.sha256,
                          datadir=self.datadir)
        self.assert_untouched()

    def test_restore_read_error_is_reported_not_hung(self):
        (art,) = self.driver.backup(self.ctx)
        self.make_datadir()

        class Failing:
            def __init__(self, path):
                self.f = open(path, 'rb')
                self.reads = 0

            def read(self, n=-1):
                self.reads += 1
                if self.reads > 1:
                    raise OSError(5, 'Input/output error')
                return self.f.read(10)

            def close(self):
                self.f.close()

        self.storage.open_reader = Failing
        exc = self.assertRaises(exception.RestoreFailed, self.driver.restore,
                                self.ctx, art.location, art.sha256,
                                datadir=self.datadir)
        self.assertIn('Input/output error', exc.message)
        self.assert_untouched()

    def test_restore_escaping_entry_is_refused(self):
        self.env(FAKE_FILES=json.dumps({'ibdata1': 'x',
                                        '../evil': 'outside'}))
        (art,) = self.driver.backup(self.ctx)
        self.make_datadir()
        self.assertRaises(exception.UnsafeArchive, self.driver.restore,
                          self.ctx, art.location, art.sha256,
                          datadir=self.datadir)
        self.assertFalse(os.path.exists(os.path.join(self.top, 'evil')))
        self.assert_untouched()

    def test_restore_failed_prepare_touches_nothing(self):
        (art,) = self.driver.backup(self.ctx)
        self.make_datadir()
        self.env(FAKE_MB_MODE='prepare_fail')
        exc = self.assertRaises(exception.RestoreFailed,
                                self.driver.restore, self.ctx, art.location,
                                art.sha256, datadir=self.datadir)
        self.assertIn('--prepare failed', exc.message)
        self.assertIn('cannot open ./ibdata1', exc.message)
        self.assert_untouched()

    def test_restore_refuses_running_server(self):
        (art,) = self.driver.backup(self.ctx)
        self.make_datadir()
        release = hold_lock(self, os.path.join(self.datadir, 'ibdata1'))
        exc = self.assertRaises(exception.RestoreFailed,
                                self.driver.restore, self.ctx, art.location,
                                art.sha256, datadir=self.datadir)
        self.assertIn('A server is running', exc.message)
        self.assert_untouched()
        # The check let go of the file: nothing is left locked by us.
        release()
        fd = os.open(os.path.join(self.datadir, 'ibdata1'), os.O_RDWR)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)


UUID = '6b2f1c3e-eee4-11f1-833f-db1cd8456e21'


class GaleraBackupTestCase(DriverTestBase):
    """A physical copy of a Galera member: checked, desynced, resynced."""

    def member(self, state='Synced', ready='ON', desync='OFF'):
        variables = dict(self.variables, wsrep_on='ON', wsrep_desync=desync)
        self.env(FAKE_VARIABLES=json.dumps(variables), FAKE_STATUS=json.dumps(
            {'wsrep_cluster_size': '3', 'wsrep_local_state_comment': state,
             'wsrep_cluster_state_uuid': UUID, 'wsrep_last_committed': '41',
             'wsrep_ready': ready, 'wsrep_cluster_status': 'Primary',
             'Threads_connected': '7'}))

    def sets(self):
        try:
            with open(os.path.join(self.fake_dir, 'sets')) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def journal(self):
        return os.path.join(test_base.CONF.state_path, 'agent',
                            'galera-desync.json')

    def test_desynced_during_the_copy_and_put_back(self):
        self.member()
        (art,) = self.driver.backup(self.ctx)
        self.assertEqual(['SET GLOBAL wsrep_desync=ON'],
                         self.record('backup.json')['sets_before'])
        self.assertEqual(['SET GLOBAL wsrep_desync=ON',
                          'SET GLOBAL wsrep_desync=OFF'], self.sets())
        self.assertIn('--galera-info', self.record('backup.json')['argv'])
        self.assertEqual({'cluster_uuid': UUID, 'seqno': 41, 'node': 'db1'},
                         art.meta['galera'])
        self.assertFalse(os.path.exists(self.journal()))

    def test_failed_copy_puts_the_node_back(self):
        self.member()
        self.env(FAKE_MB_MODE='fail')
        self.assertRaises(exception.DumpFailed, self.driver.backup, self.ctx)
        self.assertEqual(['SET GLOBAL wsrep_desync=ON',
                          'SET GLOBAL wsrep_desync=OFF'], self.sets())
        self.assertFalse(os.path.exists(self.journal()))

    def test_cancelled_copy_puts_the_node_back(self):
        self.member()

        def cancel(nbytes, nfiles):
            raise runner_mod.TaskCancelled('stopping')
        self.ctx.progress = cancel
        self.assertRaises(runner_mod.TaskCancelled, self.driver.backup,
                          self.ctx)
        self.assertEqual(['SET GLOBAL wsrep_desync=ON',
                          'SET GLOBAL wsrep_desync=OFF'], self.sets())

    def test_operator_desync_is_left_as_found(self):
        self.member(desync='ON')
        (art,) = self.driver.backup(self.ctx)
        self.assertEqual([], self.sets())
        self.assertEqual(UUID, art.meta['galera']['cluster_uuid'])

    def test_node_not_synced_is_refused_untouched(self):
        for state, ready in (('Donor/Desynced', 'ON'), ('Joining', 'OFF'),
                             ('Synced', 'OFF')):
            self.member(state=state, ready=ready)
            exc = self.assertRaises(exception.DumpFailed, self.driver.backup,
                                    self.ctx)
            self.assertIn('Galera node db1 is %s' % state, exc.message)
            self.assertEqual([], self.sets())
            self.assertFalse(os.path.exists(
                os.path.join(self.fake_dir, 'backup.json')))
            self.assertEqual([], self.stored_files())

    def test_recover_resyncs_after_a_killed_agent(self):
        self.member()
        os.makedirs(os.path.dirname(self.journal()), exist_ok=True)
        with open(self.journal(), 'w') as f:
            json.dump({'host': 'db1'}, f)
        self.driver.recover()
        self.assertEqual(['SET GLOBAL wsrep_desync=OFF'], self.sets())
        self.assertFalse(os.path.exists(self.journal()))
        self.driver.recover()       # nothing journalled: nothing to do
        self.assertEqual(['SET GLOBAL wsrep_desync=OFF'], self.sets())

    def test_membership_for_the_heartbeat(self):
        self.member(state='Donor/Desynced')
        self.assertEqual(
            {'galera': {'cluster_uuid': UUID, 'state': 'Donor/Desynced',
                        'size': 3, 'seqno': 41, 'ready': True,
                        'primary': True, 'connections': 7,
                        'desync': False}}, self.driver.membership())
        self.env(FAKE_VARIABLES=json.dumps(self.variables))
        self.assertEqual({}, self.driver.membership())
