"""Storage.list contract, run against every backend.

A test case mixes ``ListingContract`` in and says how to get the storage
under test (``listing_storage``), how large a multipart object must be
(``multipart_size``, 0 where the backend has none) and how a write is
left interrupted (``abandon``). Local runs in the unit suite; ssh, swift
and s3 run in the functional suite against real servers.
"""

import os
import time

from osbackup import exception
from osbackup.storage import encrypted
from osbackup.storage import throttle

MiB = 1 << 20


class ListingContract:
    """What ``Storage.list`` must do on every backend."""

    #: Bytes that make a multipart object (segments, parts); 0: none.
    multipart_size = 0

    def listing_storage(self):
        """A fresh, empty storage of the backend under test."""
        raise NotImplementedError

    def abandon(self, writer) -> None:
        """Leave ``writer`` as a killed writer would: never committed."""
        writer.flush()

    def listing_wrap(self, storage):
        """``storage`` encrypted and throttled, as an agent may see it."""
        cipher = encrypted.Cipher(os.urandom(32))
        return throttle.ThrottledStorage(
            encrypted.EncryptedStorage(storage, cipher), 1 << 30)

    # -- helpers -------------------------------------------------------------

    def _store(self, storage, key, size):
        with storage.open_writer(key) as writer:
            data = os.urandom(size)
            for start in range(0, size, MiB):
                writer.write(data[start:start + MiB])
            return writer.commit()

    def _listed(self, storage, prefix=''):
        return {o.location: o for o in storage.list(prefix)}

    # -- the contract -------------------------------------------------------

    def test_list_empty_and_missing_target(self):
        storage = self.listing_storage()
        # Not created yet (or not mounted): an error, never "empty".
        self.assertRaises(exception.StorageError, list, storage.list())
        storage.delete(self._store(storage, 'ctl-1/b0/nova/n.tar.zst', 1))
        self.assertEqual([], list(storage.list()))

    def test_list_committed_objects_only(self):
        storage = self.listing_storage()
        before = time.time()
        sizes = {'ctl-1/b1/nova/nova.tar.zst': 1000,
                 'ctl-1/b1/mysql/all.sql.zst': 0,
                 '_records/b1.json': 77}
        if self.multipart_size:
            sizes['ctl-1/b1/glance/glance.tar.zst'] = \
                2 * self.multipart_size + 3
        stored = {self._store(storage, k, n): n for k, n in sizes.items()}
        interrupted = storage.open_writer('ctl-1/b2/nova/nova.tar.zst')
        interrupted.write(os.urandom(max(self.multipart_size, 1000) + 1))
        self.abandon(interrupted)
        listed = self._listed(storage)
        # Exactly what commit() returned: what the catalogue compares.
        self.assertEqual(set(stored), set(listed))
        for location, size in stored.items():
            obj = listed[location]
            self.assertEqual(size, obj.size, location)
            # The target's clock, not ours: allow for some skew.
            self.assertGreater(obj.mtime, before - 300, location)
            self.assertLess(obj.mtime, time.time() + 300, location)

    def test_list_prefix_is_a_key_prefix(self):
        storage = self.listing_storage()
        one = self._store(storage, 'ctl-1/b1/nova/n.tar.zst', 10)
        ten = self._store(storage, 'ctl-10/b1/nova/n.tar.zst', 10)
        rec = self._store(storage, '_records/b1.json', 10)
        self.assertEqual({one}, set(self._listed(storage, 'ctl-1/')))
        self.assertEqual({one, ten}, set(self._listed(storage, 'ctl-1')))
        self.assertEqual({rec}, set(self._listed(storage, '_records/b1')))
        self.assertEqual([], list(storage.list('_records/b2')))
        self.assertEqual([], list(storage.list('nothing/here/')))

    def test_list_through_the_wrappers(self):
        storage = self.listing_wrap(self.listing_storage())
        location = self._store(storage, 'ctl-1/b3/nova/nova.tar.zst', 5000)
        self.assertTrue(location.endswith(encrypted.SUFFIX), location)
        (obj,) = storage.list('ctl-1/')
        self.assertEqual(location, obj.location)
        self.assertEqual(encrypted.stored_size(5000), obj.size)

    def test_list_many_objects(self):
        storage = self.listing_storage()
        # Object stores page at list_page: make several pages.
        if hasattr(storage, 'list_page'):
            storage.list_page = 3
        stored = {self._store(storage, 'ctl-1/b4/s%02d/a' % n, n)
                  for n in range(10)}
        listed = [o.location for o in storage.list('ctl-1/b4/')]
        self.assertEqual(sorted(stored), sorted(listed))
        self.assertEqual(len(set(listed)), len(listed))
