"""SSH storage against a real sshd on 127.0.0.1.

The server is the machine's OpenSSH (``sshd.SSHServer``), logged in with a
generated key and checked against a generated known_hosts file; since it
runs here, the tests look at the "remote" files directly.
"""

import contextlib
import hashlib
import os
import shutil
import stat
import subprocess
import time

from osbackup import exception
from osbackup.storage import ssh
from osbackup.tests import base
from osbackup.tests.functional import sshd
from osbackup.tests import storage_contract

MiB = 1 << 20


class SSHStorageTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.server = self.useFixture(sshd.SSHServer())
        # Not there yet: the first write creates it, 0700.
        self.dest = os.path.join(self.state_dir, 'remote', 'backups')
        self.flags(group='ssh_storage',
                   destination=self.server.destination(self.dest),
                   port=self.server.port,
                   identity_file=self.server.identity_file,
                   known_hosts_file=self.server.known_hosts,
                   connect_timeout=5)
        self.storage = ssh.SSHStorage(self.cfg.conf)

    def loc(self, key):
        return self.storage.location(os.path.join(self.dest, key))

    def listing(self):
        found = []
        for dirpath, dirs, files in os.walk(self.dest):
            for name in dirs + files:
                found.append(os.path.relpath(os.path.join(dirpath, name),
                                             self.dest))
        return sorted(found)

    def put(self, key, data):
        with self.storage.open_writer(key) as w:
            w.write(data)
            return w.commit()

    def read_all(self, location):
        digest, size = hashlib.sha256(), 0
        with contextlib.closing(self.storage.open_reader(location)) as r:
            while True:
                chunk = r.read(MiB)
                if not chunk:
                    return digest.hexdigest(), size
                digest.update(chunk)
                size += len(chunk)

    def test_large_artifact_round_trip(self):
        key = 'ctl-1/42/nova/nova.tar.zst'
        digest = hashlib.sha256()
        writer = self.storage.open_writer(key)
        with writer:
            for i in range(20):
                chunk = os.urandom(MiB)
                digest.update(chunk)
                writer.write(chunk)
            location = writer.commit()
        self.assertEqual(self.loc(key), location)
        self.assertEqual((digest.hexdigest(), 20 * MiB),
                         self.read_all(location))
        self.assertTrue(self.storage.exists(location))
        self.assertEqual(['ctl-1', 'ctl-1/42', 'ctl-1/42/nova',
                          'ctl-1/42/nova/nova.tar.zst'], self.listing())
        # umask 077 on the server: 0600 file in 0700 directories.
        final = os.path.join(self.dest, key)
        self.assertEqual(0o600, stat.S_IMODE(os.stat(final).st_mode))
        for d in ('', 'ctl-1', 'ctl-1/42', 'ctl-1/42/nova'):
            self.assertEqual(0o700, stat.S_IMODE(
                os.stat(os.path.join(self.dest, d)).st_mode), d)

    def test_abort_leaves_no_file(self):
        try:
            with self.storage.open_writer('h/1/x.tar.zst') as w:
                w.write(os.urandom(3 * MiB))
                raise RuntimeError('the archive failed')
        except RuntimeError:
            pass
        self.assertEqual(['h', 'h/1'], self.listing())
        self.assertFalse(self.storage.exists(self.loc('h/1/x.tar.zst')))

    def test_interrupted_writes_are_cleaned_per_host(self):
        writers = {}
        for host in ('h1', 'h2'):
            w = self.storage.open_writer('%s/7/glance.tar.zst' % host)
            w.write(os.urandom(MiB))
            w.flush()
            writers[host] = w
        done = self.put('h1/6/nova.tar.zst', b'complete')
        for host, w in writers.items():
            partial = os.path.join(self.dest, host, '7',
                                   'glance.tar.zst.partial')
            deadline = time.monotonic() + 30
            while not os.path.exists(partial):
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
            w._proc.kill()  # the agent died mid-write
            w._proc.wait()
        self.assertEqual([self.loc('h1/7/glance.tar.zst.partial')],
                         self.storage.cleanup_partials('h1'))
        self.assertEqual(
            ['h1', 'h1/6', 'h1/6/nova.tar.zst', 'h1/7', 'h2', 'h2/7',
             'h2/7/glance.tar.zst.partial'], self.listing())
        self.assertEqual([], self.storage.cleanup_partials('h1'))
        self.assertEqual([], self.storage.cleanup_partials('h3'))
        self.assertTrue(self.storage.exists(done))

    def test_delete_removes_file_and_empty_dirs(self):
        a = self.put('h/1/nova/a.bin', b'a')
        b = self.put('h/1/glance/b.bin', b'b')
        self.storage.delete(a)
        self.assertFalse(self.storage.exists(a))
        self.assertEqual(['h', 'h/1', 'h/1/glance', 'h/1/glance/b.bin'],
                         self.listing())
        self.storage.delete(a)  # missing is fine
        self.storage.delete(b)
        self.assertEqual([], self.listing())
        self.assertTrue(os.path.isdir(self.dest))

    def test_missing_location(self):
        self.put('h/1/a.bin', b'a')
        self.assertRaises(exception.NotFound, self.storage.open_reader,
                          self.loc('h/1/nope.bin'))
        self.assertRaises(exception.NotFound, self.storage.open_reader,
                          self.loc('nothing/here'))
        self.assertFalse(self.storage.exists(self.loc('h/1/nope.bin')))

    def test_hostile_key_stays_a_name(self):
        canary = os.path.join(self.state_dir, 'pwned')
        key = "h/1/a'; touch %s; $(touch %s) `touch %s` \"x\"" % (
            canary, canary, canary)
        location = self.put(key, b'data')
        self.assertEqual(b'data', open(os.path.join(self.dest, key),
                                       'rb').read())
        self.assertEqual((hashlib.sha256(b'data').hexdigest(), 4),
                         self.read_all(location))
        self.storage.delete(location)
        self.assertFalse(os.path.exists(canary))
        self.assertEqual([], self.listing())

    def test_free_bytes(self):
        free = self.storage.free_bytes()
        self.assertIsInstance(free, int)
        self.assertGreater(free, 0)
        self.assertLessEqual(
            abs(free - shutil.disk_usage(self.state_dir).free), 256 * MiB)

    def test_wrong_host_key(self):
        other = os.path.join(self.state_dir, 'other_host_key')
        other_key = sshd.keygen(other)
        with open(self.server.known_hosts, 'w') as f:
            f.write(self.server.known_hosts_line(other_key))
        writer = self.storage.open_writer('h/1/x.bin')

        def write_and_commit():
            writer.write(os.urandom(MiB))
            writer.commit()
        for call, arg in ((write_and_commit, None),
                          (self.storage.exists, self.loc('h/1/x.bin')),
                          (self.storage.open_reader, self.loc('h/1/x.bin')),
                          (self.storage.delete, self.loc('h/1/x.bin'))):
            exc = self.assertRaises(exception.StorageError,
                                    *((call, arg) if arg else (call,)))
            self.assertNotIsInstance(exc, exception.NotFound)
            self.assertIn('host key verification failed', exc.message.lower())
        writer.abort()
        self.assertIsNone(self.storage.free_bytes())
        self.assertEqual([], self.storage.cleanup_partials('h'))
        self.assertFalse(os.path.exists(self.dest))

    def test_unknown_host_key(self):
        open(self.server.known_hosts, 'w').close()
        exc = self.assertRaises(exception.StorageError, self.storage.exists,
                                self.loc('x'))
        self.assertIn('Host key verification failed', exc.message)
        self.flags(group='ssh_storage', strict_host_key_checking=False)
        storage = ssh.SSHStorage(self.cfg.conf)
        self.assertFalse(storage.exists(self.loc('x')))

    def test_key_not_authorized(self):
        other = os.path.join(self.state_dir, 'stranger_key')
        sshd.keygen(other)
        self.flags(group='ssh_storage', identity_file=other)
        exc = self.assertRaises(exception.StorageError,
                                ssh.SSHStorage(self.cfg.conf).exists,
                                self.loc('x'))
        self.assertIn('Permission denied', exc.message)

    def test_awkward_file_names_reach_ssh_intact(self):
        odd = os.path.join(self.state_dir, 'conf dir %d')
        os.makedirs(odd)
        identity = os.path.join(odd, 'key %h')
        known_hosts = os.path.join(odd, 'known hosts %p')
        shutil.copy(self.server.identity_file, identity)
        os.chmod(identity, 0o600)
        shutil.copy(self.server.known_hosts, known_hosts)
        self.flags(group='ssh_storage', identity_file=identity,
                   known_hosts_file=known_hosts)
        storage = ssh.SSHStorage(self.cfg.conf)
        self.assertFalse(storage.exists(self.loc('x')))

    def test_disk_full(self):
        os.makedirs(self.dest)
        proc = subprocess.run(['mount', '-t', 'tmpfs', '-o',
                               'size=1m,mode=0700', 'tmpfs', self.dest],
                              capture_output=True, text=True)
        if proc.returncode:
            self.skipTest('a disk full needs a 1 MiB tmpfs, and mounting '
                          'one needs root with CAP_SYS_ADMIN: %s'
                          % proc.stderr.strip())
        self.addCleanup(subprocess.run, ['umount', '-l', self.dest])

        def fill():
            with self.storage.open_writer('h/1/big.bin') as w:
                for _ in range(8):
                    w.write(os.urandom(MiB))
                w.commit()
        exc = self.assertRaises(exception.InsufficientSpace, fill)
        self.assertIsInstance(exc, exception.StorageError)
        self.assertIn('No space left on the backup server', exc.message)
        self.assertEqual(['h', 'h/1'], self.listing())
        # Small artifacts still fit afterwards.
        self.put('h/1/small.bin', b'x' * 1000)


class SSHListingTest(storage_contract.ListingContract, base.TestCase):
    """Storage.list over a real sshd."""

    def setUp(self):
        super().setUp()
        self.server = self.useFixture(sshd.SSHServer())

    def listing_storage(self):
        dest = os.path.join(self.state_dir, 'listed-%d' % len(
            os.listdir(self.state_dir)))
        self.flags(group='ssh_storage',
                   destination=self.server.destination(dest),
                   port=self.server.port,
                   identity_file=self.server.identity_file,
                   known_hosts_file=self.server.known_hosts,
                   connect_timeout=5)
        return ssh.SSHStorage(self.cfg.conf)

    def abandon(self, writer):
        # The ssh client killed after sending: the partial file stays.
        writer._proc.stdin.close()
        writer._proc.wait()

    def test_list_odd_file_names(self):
        storage = self.listing_storage()
        odd = "ctl-1/b1/nova/with space 'and' \\back\nline.tar"
        location = self._store(storage, 'ctl-1/b1/nova/n.tar.zst', 10)
        # Another program's file with a newline in its name.
        with open(storage.check_location(location)[:-len('n.tar.zst')] +
                  odd.rpartition('/')[2], 'wb') as f:
            f.write(b'abc')
        listed = {o.location: o.size for o in storage.list()}
        self.assertEqual(10, listed.pop(location))
        self.assertEqual([3], list(listed.values()))
        self.assertIn('back\nline', list(listed)[0])
