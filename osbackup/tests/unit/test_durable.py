"""Durable writes and the sync of staged trees."""

import os

import fixtures

from osbackup import durable
from osbackup.tests import base


class SyncFilesystemsTest(base.TestCase):

    def test_syncs_real_directories(self):
        one = os.path.join(self.state_dir, 'one')
        two = os.path.join(self.state_dir, 'two')
        os.makedirs(one)
        os.makedirs(two)
        with open(os.path.join(one, 'f'), 'w') as f:
            f.write('data')
        durable.sync_filesystems([one, two])

    def test_missing_tree_raises(self):
        self.assertRaises(FileNotFoundError, durable.sync_filesystems,
                          [os.path.join(self.state_dir, 'gone')])

    def test_kernel_error_is_raised(self):
        self.useFixture(fixtures.MockPatchObject(
            durable._libc, 'syncfs', lambda fd: -1))
        self.assertRaises(OSError, durable.sync_filesystems,
                          [self.state_dir])
