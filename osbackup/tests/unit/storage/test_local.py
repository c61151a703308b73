"""Local storage: atomic writes, modes, containment."""

import os
import stat

from osbackup import exception
from osbackup.storage import local
from osbackup.tests import base
from osbackup.tests import storage_contract


class LocalStorageTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.path = os.path.join(self.state_dir, 'store')
        self.storage = local.LocalStorage(self.cfg.conf, path=self.path)

    def test_commit_is_atomic_and_private(self):
        old = os.umask(0)
        self.addCleanup(os.umask, old)
        writer = self.storage.open_writer('h/1/nova/nova.tar.zst')
        writer.write(b'abc')
        final = os.path.join(self.path, 'h/1/nova/nova.tar.zst')
        self.assertFalse(os.path.exists(final))
        self.assertEqual(final, writer.commit())
        self.assertEqual(0o600, stat.S_IMODE(os.stat(final).st_mode))
        for d in ('', 'h', 'h/1', 'h/1/nova'):
            self.assertEqual(0o700, stat.S_IMODE(
                os.stat(os.path.join(self.path, d)).st_mode))
        with self.storage.open_reader(final) as f:
            self.assertEqual(b'abc', f.read())
        self.assertEqual(final, self.storage.direct_path(final))

    def test_abort_on_exception_leaves_nothing(self):
        try:
            with self.storage.open_writer('h/1/x.bin') as w:
                w.write(b'partial')
                raise ValueError('boom')
        except ValueError:
            pass
        self.assertEqual([], os.listdir(os.path.join(self.path, 'h/1')))

    def test_keys_and_locations_cannot_escape(self):
        self.assertRaises(exception.InvalidInput,
                          self.storage.open_writer, '../evil')
        self.assertRaises(exception.InvalidInput,
                          self.storage.open_reader, '/etc/passwd')
        self.assertRaises(exception.InvalidInput,
                          self.storage.delete, '/etc/passwd')
        self.assertRaises(exception.InvalidInput,
                          self.storage.direct_path, '/etc/passwd')

    def test_delete_removes_empty_dirs(self):
        with self.storage.open_writer('h/1/a.bin') as w:
            w.write(b'1')
            loc = w.commit()
        self.storage.delete(loc)
        self.storage.delete(loc)
        self.assertEqual([], os.listdir(self.path))

    def test_missing_artifact(self):
        self.assertRaises(exception.NotFound, self.storage.open_reader,
                          os.path.join(self.path, 'nope'))


class LocalListingTest(storage_contract.ListingContract, base.TestCase):

    def listing_storage(self):
        return local.LocalStorage(
            self.cfg.conf, path=os.path.join(self.state_dir, 'listed'))

    def test_list_skips_what_is_not_a_file(self):
        storage = self.listing_storage()
        location = self._store(storage, 'ctl-1/b1/nova/n.tar.zst', 10)
        os.symlink(location, location + '.link')
        os.mkfifo(os.path.join(storage.path, 'ctl-1', 'fifo'))
        self.assertEqual([location], [o.location for o in storage.list()])
