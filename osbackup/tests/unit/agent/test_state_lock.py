"""One agent per state directory (agent/state_lock.py)."""

import os
import subprocess
import sys
import tempfile

import testtools

from osbackup.agent import state_lock


class StateLockTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp()
        self.addCleanup(subprocess.run, ['rm', '-rf', self.dir])

    def test_second_lock_refused_naming_directory_and_pid(self):
        lock = state_lock.acquire(self.dir)
        self.addCleanup(lock.release)
        exc = self.assertRaises(state_lock.StateDirectoryBusy,
                                state_lock.acquire, self.dir)
        self.assertIn(self.dir, exc.message)
        self.assertIn('(pid %d)' % os.getpid(), exc.message)

    def test_released_lock_can_be_taken_again(self):
        state_lock.acquire(self.dir).release()
        lock = state_lock.acquire(self.dir)
        lock.release()

    def test_lock_of_a_dead_process_is_free(self):
        # The kernel drops a flock with its process, however it ends.
        code = ('import os; from osbackup.agent import state_lock; '
                'state_lock.acquire(%r); os._exit(9)' % self.dir)
        self.assertEqual(9, subprocess.run([sys.executable, '-c',
                                            code]).returncode)
        state_lock.acquire(self.dir).release()

    def test_lock_not_inherited_by_children(self):
        lock = state_lock.acquire(self.dir)
        self.addCleanup(lock.release)
        self.assertFalse(os.get_inheritable(lock.fd))

    def test_unusable_directory_is_one_clear_error(self):
        path = os.path.join(self.dir, 'file')
        open(path, 'w').close()
        exc = self.assertRaises(state_lock.StateDirectoryBusy,
                                state_lock.acquire, path)
        self.assertIn('Cannot lock the state directory %s' % path,
                      exc.message)
