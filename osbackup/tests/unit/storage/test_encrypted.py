"""Encryption at rest: round trips, tampering, truncation, wrong keys."""

import contextlib
import os
import stat

from osbackup import exception
from osbackup import storage as storage_mod
from osbackup.storage import encrypted
from osbackup.storage import local
from osbackup.tests import base

CHUNK = encrypted.CHUNK


class EncryptedStorageTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.path = os.path.join(self.state_dir, 'store')
        self.key_file = self.write_key('storage.key', b'a1' * 32)
        self.flags(group='storage', local_path=self.path,
                   encryption_key_file=self.key_file)
        self.storage = storage_mod.get_storage(self.cfg.conf)

    def _put(self, data, key='h/1/nova/nova.tar.zst', storage=None):
        with (storage or self.storage).open_writer(key) as w:
            # Uneven writes: chunking must not depend on them.
            for i in range(0, len(data), 300001):
                w.write(data[i:i + 300001])
            return w.commit()

    def _get(self, location, storage=None):
        with contextlib.closing(
                (storage or self.storage).open_reader(location)) as f:
            return f.read()

    def _corrupt(self, location, storage=None):
        return self.assertRaises(exception.ArtifactCorrupt, self._get,
                                 location, storage).message

    def test_round_trip_of_many_sizes(self):
        for size in (0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17):
            data = os.urandom(size)
            location = self._put(data, key='h/1/x/%d' % size)
            self.assertTrue(location.endswith('.enc'))
            self.assertEqual(data, self._get(location))
            with open(location, 'rb') as f:
                stored = f.read()
            self.assertTrue(stored.startswith(encrypted.MAGIC))
            if size >= 64:
                self.assertNotIn(data[:64], stored)

    def test_private_modes_whatever_the_umask(self):
        old = os.umask(0)
        self.addCleanup(os.umask, old)
        location = self._put(b'secret')
        self.assertEqual(0o600, stat.S_IMODE(os.stat(location).st_mode))
        self.assertEqual(0o700, stat.S_IMODE(
            os.stat(os.path.dirname(location)).st_mode))

    def test_flipped_byte_anywhere_is_detected(self):
        data = os.urandom(2 * CHUNK + 5)
        location = self._put(data)
        size = os.path.getsize(location)
        for offset in (3, encrypted.HEADER_SIZE - 1,
                       encrypted.HEADER_SIZE + 2, CHUNK // 2,
                       CHUNK + 100, size - 1):
            with open(location, 'r+b') as f:
                f.seek(offset)
                byte = f.read(1)
                f.seek(offset)
                f.write(bytes([byte[0] ^ 0x01]))
            message = self._corrupt(location)
            self.assertIn('cannot be decrypted/authenticated', message)
            with open(location, 'r+b') as f:
                f.seek(offset)
                f.write(byte)
        self.assertEqual(data, self._get(location))

    def test_truncation_is_detected_even_at_a_chunk_boundary(self):
        data = os.urandom(2 * CHUNK + 5)
        location = self._put(data)
        with open(location, 'rb') as f:
            stored = f.read()
        first = encrypted.HEADER_SIZE + 5 + CHUNK + 16
        for cut in (len(stored) - 1, first, first + 3, 10):
            with open(location, 'wb') as f:
                f.write(stored[:cut])
            self.assertIn('truncated', self._corrupt(location))
        # Data appended after the final chunk.
        with open(location, 'wb') as f:
            f.write(stored + b'x')
        self.assertIn('after its final chunk', self._corrupt(location))

    def test_reordered_and_swapped_chunks_are_detected(self):
        location = self._put(os.urandom(3 * CHUNK))
        with open(location, 'rb') as f:
            stored = f.read()
        head = encrypted.HEADER_SIZE
        size = 5 + CHUNK + 16
        chunks = [stored[head + i * size:head + (i + 1) * size]
                  for i in range(2)]
        with open(location, 'wb') as f:
            f.write(stored[:head] + chunks[1] + chunks[0] +
                    stored[head + 2 * size:])
        self.assertIn('chunk 0 failed authentication',
                      self._corrupt(location))
        # A chunk of another object under the same key.
        other = self._put(os.urandom(3 * CHUNK), key='h/2/nova/x')
        with open(other, 'rb') as f:
            foreign = f.read()[head:head + size]
        with open(location, 'wb') as f:
            f.write(stored[:head] + foreign + stored[head + size:])
        self.assertIn('chunk 0 failed authentication',
                      self._corrupt(location))

    def test_wrong_key_says_so(self):
        location = self._put(b'data')
        self.flags(group='storage', encryption_key_file=self.write_key(
            'other.key', b'b2' * 32))
        message = self._corrupt(location,
                                storage_mod.get_storage(self.cfg.conf))
        self.assertIn('encrypted with another key', message)

    def test_artifacts_written_before_the_key_stay_readable(self):
        self.flags(group='storage', encryption_key_file=None)
        plain = storage_mod.get_storage(self.cfg.conf)
        self.assertIsInstance(plain, local.LocalStorage)
        old = self._put(b'plain', key='h/0/nova/old', storage=plain)
        self.assertFalse(old.endswith('.enc'))
        self.assertEqual(b'plain', self._get(old))

    def test_only_plain_artifacts_are_read_in_place(self):
        location = self._put(b'secret')
        self.assertIsNone(self.storage.direct_path(location))
        self.flags(group='storage', encryption_key_file=None)
        plain = storage_mod.get_storage(self.cfg.conf)
        old = self._put(b'plain', key='h/0/nova/old', storage=plain)
        self.assertEqual(old, self.storage.direct_path(old))

    def test_abort_and_partials(self):
        with self.assertRaises(ValueError):
            with self.storage.open_writer('h/1/x') as w:
                w.write(os.urandom(CHUNK * 2))
                raise ValueError()
        self.assertEqual([], os.listdir(os.path.join(self.path, 'h/1')))
        w = self.storage.open_writer('h/host/x')
        w.write(b'half')
        self.assertEqual(1, len(self.storage.cleanup_partials('h')))
        self.assertEqual(self.path, self.storage.path)
        self.assertIsInstance(self.storage.inner, local.LocalStorage)
        self.assertEqual('local', self.storage.name)

    def test_key_file_must_be_private(self):
        os.chmod(self.key_file, 0o644)
        self.assertRaises(exception.InvalidInput, storage_mod.get_storage,
                          self.cfg.conf)
