"""SSH storage without a network.

``[ssh_storage] ssh_path`` points at a fake ssh that logs its argv and runs
the remote command with ``sh -c`` here, so the destination is a temp dir
and the whole write/commit/abort/read/delete cycle runs for real.
"""

import contextlib
import hashlib
import json
import os
import shlex
import stat
import sys
import textwrap
import time
from unittest import mock

import fixtures
from stevedore import driver

from osbackup import exception
from osbackup import storage as storage_mod
from osbackup.storage import ssh
from osbackup.tests import base

FAKE_SSH = textwrap.dedent('''\
    #!%s
    import json, os, sys
    with open(os.environ['FAKE_SSH_LOG'], 'a') as f:
        f.write(json.dumps(sys.argv) + '\\n')
    args = sys.argv[1:]
    command = args[args.index('--') + 2]
    mode = os.environ.get('FAKE_SSH_MODE', '')
    if mode == 'refused':
        sys.stderr.write('ssh: connect to host backup.example port 2222: '
                         'Connection refused\\n')
        sys.exit(255)
    if mode == 'hostkey':
        sys.stderr.write('@' * 59 + '\\n' + 'WARNING: REMOTE HOST '
                         'IDENTIFICATION HAS CHANGED!\\n' + 'x' * 900 +
                         '\\nHost key verification failed.\\n')
        sys.exit(255)
    if mode.startswith('full') and 'cat > ' in command:
        if mode == 'full-early':
            sys.stdin.buffer.read(65536)
        else:
            while sys.stdin.buffer.read(65536):
                pass
        sys.stderr.write('cat: write error: No space left on device\\n')
        sys.exit(1)
    if mode == 'chatty':
        sys.stdout.write('Welcome to the backup server!\\n')
        sys.stdout.flush()
    os.chdir(os.environ['FAKE_SSH_CWD'])
    os.execvp('sh', ['sh', '-c', command])
    ''') % sys.executable

HOSTILE_KEYS = [
    'h/1/a; rm -rf $HOME; touch pwned',
    'h/1/$(touch pwned)',
    'h/1/`touch pwned`',
    "h/1/it's \"quoted\" & | > < * ? [x] {a,b} ~ # !",
    'h/1/-rf',
    'h/1/ leading and trailing space ',
]


class SSHStorageTestBase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.dest = os.path.join(self.state_dir, 'backups')
        self.cwd = os.path.join(self.state_dir, 'cwd')
        os.makedirs(self.cwd)
        self.fake = os.path.join(self.state_dir, 'fake-ssh')
        with open(self.fake, 'w') as f:
            f.write(FAKE_SSH)
        os.chmod(self.fake, 0o755)
        self.log = os.path.join(self.state_dir, 'ssh.log')
        self.useFixture(fixtures.EnvironmentVariable('FAKE_SSH_LOG',
                                                     self.log))
        self.useFixture(fixtures.EnvironmentVariable('FAKE_SSH_CWD',
                                                     self.cwd))
        self.useFixture(fixtures.EnvironmentVariable('FAKE_SSH_MODE', ''))
        self.identity = os.path.join(self.state_dir, 'id_ed25519')
        open(self.identity, 'w').close()
        self.flags(group='ssh_storage', ssh_path=self.fake, port=2222,
                   destination='backup@backup.example:' + self.dest,
                   identity_file=self.identity,
                   known_hosts_file='/etc/osbackup/known_hosts')
        old = os.umask(0o022)
        self.addCleanup(os.umask, old)
        self.storage = ssh.SSHStorage(self.cfg.conf)

    def mode(self, mode):
        os.environ['FAKE_SSH_MODE'] = mode

    def calls(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(line) for line in f]

    def remote_commands(self):
        return [argv[argv.index('--') + 2] for argv in self.calls()]

    def loc(self, rel):
        return 'ssh://backup@backup.example:2222%s/%s' % (self.dest, rel)

    def put(self, key, data):
        with self.storage.open_writer(key) as w:
            w.write(data)
            return w.commit()

    def get(self, location):
        with contextlib.closing(self.storage.open_reader(location)) as r:
            chunks = []
            while True:
                chunk = r.read(65536)
                if not chunk:
                    return b''.join(chunks)
                chunks.append(chunk)

    def listing(self):
        found = []
        for dirpath, dirs, files in os.walk(self.dest):
            for name in dirs + files:
                found.append(os.path.relpath(os.path.join(dirpath, name),
                                             self.dest))
        return sorted(found)


class LocationTest(SSHStorageTestBase):

    def test_parse_destination(self):
        self.assertEqual(('backup', 'host.example', '/srv/backups'),
                         ssh.parse_destination(
                             'backup@host.example:/srv/backups/'))
        self.assertEqual((None, 'host', '/srv'),
                         ssh.parse_destination('host:/srv'))
        self.assertEqual(('b', '2001:db8::5', '/srv'),
                         ssh.parse_destination('b@[2001:db8::5]:/srv'))
        self.assertEqual(('b', '192.0.2.1', '/a/b'),
                         ssh.parse_destination('b@192.0.2.1:/a//b/./'))

    def test_bad_destinations(self):
        for bad in ('', 'host', 'user@host', 'user@host:relative',
                    'user@host:/', 'user@host:/..', 'user@-oProxyCommand=x:/s',
                    'us er@host:/srv', '-l@host:/srv', 'user@ho;st:/srv',
                    'user@[::1:/srv', 'user@[zz]:/srv', 'user@host:/a\nb'):
            self.assertRaises(exception.InvalidInput,
                              ssh.parse_destination, bad)
        self.flags(group='ssh_storage', destination=None)
        self.assertRaises(exception.InvalidInput, ssh.SSHStorage,
                          self.cfg.conf)

    def test_location_round_trip(self):
        for user, host, port, path in (
                ('backup', 'host.example', 22, '/srv/b/h/1/x.tar.zst'),
                (None, 'host', 2222, '/srv/a b;$(x)'),
                ('b', '2001:db8::5', 22, '/srv/x')):
            location = ssh.format_location(user, host, port, path)
            self.assertEqual(ssh.Location(user, host, port, path),
                             ssh.parse_location(location))
        self.assertEqual('ssh://b@[2001:db8::5]:22/srv/x',
                         ssh.format_location('b', '2001:db8::5', 22,
                                             '/srv/x'))
        # Paths are verbatim, not URL-encoded: '#' and '?' are path.
        self.assertEqual('/srv/a#b?c=%20',
                         ssh.parse_location('ssh://h:22/srv/a#b?c=%20').path)

    def test_bad_locations(self):
        for bad in (None, '/srv/x', 'file:///srv/x', 'ssh://host/srv/x',
                    'ssh://host:0/srv/x', 'ssh://host:99999/srv/x',
                    'ssh://host:22', 'ssh://host:x/srv', 'ssh://-o:22/x'):
            self.assertRaises(exception.InvalidInput, ssh.parse_location,
                              bad)

    def test_locations_must_be_under_the_destination(self):
        self.assertEqual(os.path.join(self.dest, 'h/1/x'),
                         self.storage.check_location(self.loc('h/1/x')))
        for bad in (
                'ssh://other@backup.example:2222%s/h/x' % self.dest,
                'ssh://backup@elsewhere.example:2222%s/h/x' % self.dest,
                'ssh://backup@backup.example:22%s/h/x' % self.dest,
                'ssh://backup@backup.example:2222/etc/passwd',
                'ssh://backup@backup.example:2222%s' % self.dest,
                'ssh://backup@backup.example:2222%s/../x' % self.dest,
                'ssh://backup@backup.example:2222%s-other/x' % self.dest,
                self.dest + '/h/x'):
            for call in (self.storage.open_reader, self.storage.delete,
                         self.storage.exists):
                self.assertRaises(exception.InvalidInput, call, bad)
        self.assertEqual([], self.calls())

    def test_keys_cannot_escape(self):
        for bad in ('../evil', 'h/../../evil', '', 'a\nb', 'a\0b'):
            self.assertRaises(exception.InvalidInput,
                              self.storage.open_writer, bad)
        self.assertRaises(exception.InvalidInput,
                          self.storage.cleanup_partials, '../x')
        self.assertEqual([], self.calls())

    def test_backend_entry_point(self):
        mgr = driver.DriverManager(storage_mod.NAMESPACE, 'ssh',
                                   invoke_on_load=True,
                                   invoke_args=(self.cfg.conf,))
        self.assertIsInstance(mgr.driver, ssh.SSHStorage)
        self.assertEqual('ssh', mgr.driver.name)


class CommandLineTest(SSHStorageTestBase):

    def test_ssh_argv(self):
        argv = self.storage.ssh_argv('true')
        self.assertEqual(
            [self.fake, '-p', '2222',
             '-o', 'IdentityFile=%s' % self.identity,
             '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
             '-o', 'ConnectTimeout=10', '-o', 'ServerAliveInterval=10',
             '-o', 'ServerAliveCountMax=3',
             '-o', 'UserKnownHostsFile=/etc/osbackup/known_hosts',
             '-o', 'StrictHostKeyChecking=yes',
             '-a', '-x', '-o', 'ClearAllForwardings=yes',
             '--', 'backup@backup.example', ssh.PREAMBLE + 'true'], argv)
        self.assertNotIn('-t', argv)

    def test_ssh_argv_options(self):
        self.flags(group='ssh_storage', strict_host_key_checking=False,
                   known_hosts_file=None, identity_file=None,
                   connect_timeout=3,
                   destination='backup.example:' + self.dest)
        argv = ssh.SSHStorage(self.cfg.conf).ssh_argv('true')
        self.assertIn('StrictHostKeyChecking=no', argv)
        self.assertIn('ConnectTimeout=3', argv)
        self.assertFalse([a for a in argv if 'Identit' in a])
        self.assertFalse([a for a in argv if 'UserKnownHostsFile' in a])
        self.assertEqual('backup.example', argv[argv.index('--') + 1])

    def test_file_names_are_escaped_for_ssh(self):
        self.flags(group='ssh_storage', identity_file='/k/my key%d',
                   known_hosts_file='/k/known "hosts" %h')
        argv = ssh.SSHStorage(self.cfg.conf).ssh_argv('true')
        self.assertIn('IdentityFile="/k/my key%%d"', argv)
        self.assertIn('UserKnownHostsFile="/k/known \\"hosts\\" %%h"', argv)

    def test_remote_commands_quote_every_path(self):
        for key in HOSTILE_KEYS:
            os.unlink(self.log) if os.path.exists(self.log) else None
            with self.storage.open_writer(key) as w:
                w.write(b'x')
                location = w.commit()
            self.assertTrue(self.storage.exists(location))
            self.get(location)
            self.storage.delete(location)
            path = os.path.join(self.dest, key)
            commands = self.remote_commands()
            self.assertEqual(5, len(commands))
            for command in commands:
                self.assertTrue(command.startswith(ssh.PREAMBLE), command)
                # The path is one shell word, exactly as written.
                lexer = shlex.shlex(command, posix=True,
                                    punctuation_chars=True)
                lexer.whitespace_split = True
                words = list(lexer)
                self.assertTrue(path in words or path + '.partial' in words,
                                (path, words))
                self.assertTrue(shlex.quote(path) in command or
                                shlex.quote(path + '.partial') in command,
                                command)

    def test_hostile_keys_are_written_literally(self):
        canary = os.path.join(self.state_dir, 'canary')
        with open(canary, 'w') as f:
            f.write('still here')
        for key in HOSTILE_KEYS:
            location = self.put(key, key.encode())
            self.assertEqual(self.loc(key), location)
            self.assertEqual(key.encode(), self.get(location))
            with open(os.path.join(self.dest, key), 'rb') as f:
                self.assertEqual(key.encode(), f.read())
        self.assertEqual([], os.listdir(self.cwd))   # no "pwned"
        self.assertTrue(os.path.exists(canary))
        self.assertEqual(sorted(['h', 'h/1'] + [k for k in HOSTILE_KEYS]),
                         self.listing())


class WriteReadTest(SSHStorageTestBase):

    def test_commit_streams_and_is_atomic_and_private(self):
        data = os.urandom(3 << 20)
        writer = self.storage.open_writer('h/1/nova/nova.tar.zst')
        final = os.path.join(self.dest, 'h/1/nova/nova.tar.zst')
        partial = final + '.partial'
        for i in range(0, 2 << 20, 1 << 16):
            writer.write(data[i:i + (1 << 16)])
        writer.flush()
        # The data is on the server before the commit: nothing buffers
        # the artifact in memory.
        deadline = time.monotonic() + 30
        while (not os.path.exists(partial) or
               os.path.getsize(partial) < 1 << 20):
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        self.assertFalse(os.path.exists(final))
        writer.write(memoryview(data)[2 << 20:])
        self.assertEqual(self.loc('h/1/nova/nova.tar.zst'), writer.commit())
        writer.abort()  # after a commit, a no-op
        self.assertFalse(os.path.exists(partial))
        self.assertEqual(0o600, stat.S_IMODE(os.stat(final).st_mode))
        for d in ('', 'h', 'h/1', 'h/1/nova'):
            self.assertEqual(0o700, stat.S_IMODE(
                os.stat(os.path.join(self.dest, d)).st_mode), d)
        location = self.loc('h/1/nova/nova.tar.zst')
        self.assertEqual(hashlib.sha256(data).hexdigest(),
                         hashlib.sha256(self.get(location)).hexdigest())
        with contextlib.closing(self.storage.open_reader(location)) as r:
            self.assertEqual(data, r.read())
        with self.storage.open_reader(location) as r:
            buf = bytearray(1000)
            self.assertEqual(1000, r.readinto(buf))
            self.assertEqual(data[:1000], bytes(buf))
        # The remote side: stream, then sync + rename as a second call.
        commands = self.remote_commands()
        self.assertIn('umask 077 && mkdir -p -- ', commands[0])
        self.assertIn('cat > ', commands[0])
        self.assertIn('sync -- ', commands[1])
        self.assertIn('mv -f -- ', commands[1])

    def test_write_after_commit_fails(self):
        writer = self.storage.open_writer('h/1/x')
        writer.commit()
        self.assertRaises(exception.StorageError, writer.write, b'x')
        self.assertRaises(exception.StorageError, writer.commit)

    def test_abort_leaves_nothing(self):
        try:
            with self.storage.open_writer('h/1/x.bin') as w:
                w.write(b'partial' * 1000)
                raise ValueError('boom')
        except ValueError:
            pass
        self.assertEqual(['h', 'h/1'], self.listing())
        w.abort()
        self.assertRaises(exception.StorageError, w.write, b'x')
        self.assertIn('rm -f -- ', self.remote_commands()[-1])

    def test_overwrite_replaces(self):
        location = self.put('h/1/x', b'old')
        self.assertEqual(location, self.put('h/1/x', b'new'))
        self.assertEqual(b'new', self.get(location))

    def test_empty_artifact(self):
        location = self.put('h/1/empty', b'')
        self.assertEqual(b'', self.get(location))

    def test_missing_artifact(self):
        self.assertRaises(exception.NotFound, self.storage.open_reader,
                          self.loc('h/nope'))
        self.assertFalse(self.storage.exists(self.loc('h/nope')))

    def test_close_before_the_end(self):
        location = self.put('h/1/big', os.urandom(4 << 20))
        reader = self.storage.open_reader(location)
        self.assertEqual(10, len(reader.read(10)))
        reader.close()
        reader.close()

    def test_delete_removes_empty_dirs(self):
        a = self.put('h/1/svc/a.bin', b'1')
        b = self.put('h/2/svc/b.bin', b'2')
        self.storage.delete(a)
        self.storage.delete(a)
        self.assertEqual(['h', 'h/2', 'h/2/svc', 'h/2/svc/b.bin'],
                         self.listing())
        self.storage.delete(b)
        self.assertEqual([], self.listing())
        self.assertTrue(os.path.isdir(self.dest))

    def test_free_bytes(self):
        free = self.storage.free_bytes()
        self.assertIsInstance(free, int)
        self.assertGreater(free, 0)
        self.assertIn('df -P -k', self.remote_commands()[-1])
        # Reused for a while (heartbeats), asked again after a commit.
        self.assertEqual(free, self.storage.free_bytes())
        self.assertEqual(1, len(self.calls()))
        self.put('h/1/x', b'x')
        self.storage.free_bytes()
        self.assertIn('df -P -k', self.remote_commands()[-1])
        with mock.patch.object(ssh, 'FREE_BYTES_TTL', 0):
            self.storage.free_bytes()
        self.assertEqual(5, len(self.calls()))

    def test_free_bytes_parses_df(self):
        out = (b'Filesystem     1024-blocks      Used Available Capacity '
               b'Mounted on\n'
               b'/dev/mapper/vg data  103081248  52428800  45406880      '
               b'54% /srv/back ups\n')
        with mock.patch.object(self.storage, 'run', return_value=mock.Mock(
                stdout=out)):
            self.assertEqual(45406880 * 1024, self.storage.free_bytes())
        self.storage.forget_free_bytes()
        with mock.patch.object(self.storage, 'run', return_value=mock.Mock(
                stdout=b'garbage\n')):
            self.assertIsNone(self.storage.free_bytes())

    def test_cleanup_partials_of_one_host(self):
        mine = self.storage.open_writer('h1/1/x')
        mine.write(b'x')
        mine.flush()
        other = self.storage.open_writer('h2/1/y')
        other.write(b'y')
        other.flush()
        done = self.put('h1/1/done', b'z')
        mine._proc.stdin.close()
        mine._proc.wait()
        other._proc.stdin.close()
        other._proc.wait()
        self.assertEqual([self.loc('h1/1/x.partial')],
                         self.storage.cleanup_partials('h1'))
        self.assertEqual(['h1', 'h1/1', 'h1/1/done', 'h2', 'h2/1',
                          'h2/1/y.partial'], self.listing())
        self.assertEqual([self.loc('h2/1/y.partial')],
                         self.storage.cleanup_partials())
        self.assertEqual([], self.storage.cleanup_partials('nobody'))
        self.assertTrue(self.storage.exists(done))
        mine.abort()
        other.abort()


class FailureTest(SSHStorageTestBase):

    def test_connection_refused(self):
        self.mode('refused')
        location = self.loc('h/1/x')
        for call in (self.storage.exists, self.storage.delete,
                     self.storage.open_reader):
            exc = self.assertRaises(exception.StorageError, call, location)
            self.assertNotIsInstance(exc, exception.NotFound)
            self.assertIn('Connection refused', exc.message)
        # Both run at agent start and heartbeats: logged, not raised.
        self.assertEqual([], self.storage.cleanup_partials('h'))
        self.assertIsNone(self.storage.free_bytes())
        writer = self.storage.open_writer('h/1/x')
        exc = self.assertRaises(exception.StorageError, writer.commit)
        self.assertIn('ssh to backup@backup.example port 2222 failed',
                      exc.message)
        self.assertIn('Connection refused', exc.message)
        writer.abort()

    def test_disk_full_while_streaming(self):
        self.mode('full-early')
        writer = self.storage.open_writer('h/1/x')
        exc = self.assertRaises(exception.InsufficientSpace,
                                self._write_forever, writer)
        self.assertIn('No space left', exc.message)
        self.assertIsInstance(exc, exception.StorageError)
        self.mode('')
        writer.abort()
        self.assertEqual([], self.listing())

    def _write_forever(self, writer):
        for _ in range(10000):
            writer.write(b'x' * 65536)

    def test_disk_full_at_commit(self):
        self.mode('full-late')
        writer = self.storage.open_writer('h/1/x')
        writer.write(b'x' * 1000)
        exc = self.assertRaises(exception.InsufficientSpace, writer.commit)
        self.assertIn('No space left on the backup server backup.example',
                      exc.message)

    def test_host_key_failure(self):
        self.mode('hostkey')
        exc = self.assertRaises(exception.StorageError, self.storage.exists,
                                self.loc('h/1/x'))
        self.assertIn('Host key verification failed', exc.message)
        # The banner is cut, its last line is kept.
        self.assertIn('[...]', exc.message)
        self.assertLess(len(exc.message), 1000)

    def test_stderr_is_cut(self):
        text = ssh._stderr_text(b'a' * 300 + b'b' * 300 + b'c' * 300)
        self.assertTrue(text.startswith('a' * 250))
        self.assertTrue(text.endswith('c' * 250))
        self.assertEqual('boom', ssh._stderr_text(
            b"Warning: Permanently added 'x' (ED25519) to the list of "
            b"known hosts.\r\nboom\n"))

    def test_missing_ssh_client(self):
        self.flags(group='ssh_storage', ssh_path='/nonexistent/ssh')
        storage = ssh.SSHStorage(self.cfg.conf)
        self.assertRaises(exception.StorageError, storage.open_writer, 'h/x')
        self.assertRaises(exception.StorageError, storage.exists,
                          self.loc('h/x'))
        self.assertIsNone(storage.free_bytes())

    def test_chatty_login_shell(self):
        location = self.put('h/1/x', b'data')
        self.mode('chatty')
        exc = self.assertRaises(exception.StorageError,
                                self.storage.open_reader, location)
        self.assertIn("sent b'Welcome to the bac' instead of the artifact",
                      exc.message)
        # Writes do not read the shell's output.
        self.put('h/1/y', b'data')
        self.mode('')
        self.assertEqual(b'data', self.get(self.loc('h/1/y')))

    def test_missing_identity_file(self):
        os.unlink(self.identity)
        exc = self.assertRaises(exception.StorageError, self.storage.exists,
                                self.loc('h/x'))
        self.assertIn('identity_file %s does not exist' % self.identity,
                      exc.message)
        self.assertRaises(exception.StorageError, self.storage.open_writer,
                          'h/x')
        self.assertEqual([], self.calls())

    def test_remote_command_failure(self):
        os.makedirs(os.path.join(self.dest, 'h', 'dir'))
        # Not a file: not an artifact.
        self.assertRaises(exception.NotFound, self.storage.open_reader,
                          self.loc('h/dir'))
        self.assertFalse(self.storage.exists(self.loc('h/dir')))
        exc = self.assertRaises(exception.StorageError, self.storage.delete,
                                self.loc('h/dir'))
        self.assertIn('Backup server backup.example failed deleting',
                      exc.message)
