"""The agent's guards: one operation per (host, service), disk space."""

import errno
import os
import threading
from unittest import mock

from osbackup.agent import claims
from osbackup.agent import journal
from osbackup.agent import runner
from osbackup import exception
from osbackup import states
from osbackup.storage import local
from osbackup.tests import base
from osbackup.tests.unit.agent import test_runner


class FakeRestorer:
    """Records the phases it runs; every phase succeeds."""

    def __init__(self):
        self.phases = []

    def __getattr__(self, phase):
        if phase not in runner.RESTORE_PHASES:
            raise AttributeError(phase)

        def run(params, progress):
            self.phases.append(phase)
            return []
        return run

    def recover(self):
        pass


class NovaDriver(test_runner.FakeDriver):
    name = 'nova'

    def units(self):
        return ['nova-api']


def _restore_task(phase, task_id, restore_id=5, files=('nova',),
                  databases=(), units=()):
    task = test_runner._task(service='restore', task_id=task_id)
    task.update(kind='restore_' + phase, params={
        'restore_id': restore_id, 'plan': {
            'files': [{'service': s} for s in files],
            'databases': [{'database': d, 'owner': o} for d, o in databases],
            'units': list(units)}})
    return task


class ClaimsTest(base.TestCase):

    def test_all_or_nothing_and_reentrant(self):
        c = claims.Claims('h1')
        c.acquire({'nova'}, 'restore 1', 'x')
        c.acquire({'nova', 'mysql'}, 'restore 1', 'x')
        err = self.assertRaises(exception.Conflict, c.acquire,
                                {'glance', 'mysql'}, 'backup task t',
                                'backup task t')
        self.assertEqual('Another operation on mysql is running on h1 '
                         '(restore 1); backup task t refused', err.message)
        self.assertEqual({'nova': 'restore 1', 'mysql': 'restore 1'},
                         c.held())
        c.release('restore 1')
        c.acquire({'glance', 'mysql'}, 'backup task t', 'x')


class RunnerClaimsTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.storage = local.LocalStorage(
            self.cfg.conf, path=os.path.join(self.state_dir, 'store'))
        self.reporter = test_runner.Recorder()
        self.nova = NovaDriver(self.cfg.conf)
        self.restorer = FakeRestorer()
        self.runner = runner.TaskRunner(
            self.cfg.conf, 'node1', {'nova': self.nova}, self.storage,
            self.reporter, journal.Journal(os.path.join(self.state_dir,
                                                        'j')),
            self.restorer)

    def test_backup_during_a_restore_is_refused_until_it_ends(self):
        self.assertEqual(states.SUCCEEDED, self.runner.run(
            _restore_task('prepare', 'p'))['status'])
        # Between phases the host is half-restored: nova stays held.
        report = self.runner.run(test_runner._task(service='nova',
                                                   task_id='b1'))
        self.assertEqual(states.FAILED, report['status'])
        self.assertEqual('Another operation on nova is running on node1 '
                         '(restore 5); backup task b1 refused',
                         report['error'])
        self.assertEqual(0, self.nova.runs)
        for phase in ('stop', 'replace', 'finish'):
            self.assertEqual(states.SUCCEEDED, self.runner.run(
                _restore_task(phase, phase))['status'])
        report = self.runner.run(test_runner._task(service='nova',
                                                   task_id='b2'))
        self.assertEqual(states.SUCCEEDED, report['status'])

    def test_restore_during_a_backup_is_refused(self):
        gate = threading.Event()
        self.nova.gate = gate
        backup = threading.Thread(target=self.runner.run, args=(
            test_runner._task(service='nova', task_id='b1'),))
        backup.start()
        self.addCleanup(backup.join)
        self.addCleanup(gate.set)
        while self.nova.runs == 0:
            threading.Event().wait(0.01)
        report = self.runner.run(_restore_task('prepare', 'p'))
        self.assertEqual(states.FAILED, report['status'])
        self.assertEqual('Another operation on nova is running on node1 '
                         '(backup task b1); restore_prepare task p refused',
                         report['error'])
        self.assertEqual([], self.restorer.phases)
        # The rollback the conductor then sends is not blocked: it only
        # undoes what this restore did (nothing) and frees nothing else.
        report = self.runner.run(_restore_task('rollback', 'r'))
        self.assertEqual(states.SUCCEEDED, report['status'])
        self.assertEqual({'nova': 'backup task b1'},
                         self.runner.claims.held())

    def test_a_restore_claims_databases_their_owners_and_units(self):
        self.runner.run(_restore_task('prepare', 'p', files=(),
                                      databases=[('keystone', 'keystone')],
                                      units=['nova-api']))
        self.assertEqual({'mysql', 'keystone', 'nova', 'restore'},
                         set(self.runner.claims.held()))
        self.runner.run(_restore_task('rollback', 'r'))
        self.assertEqual({}, self.runner.claims.held())

    def test_second_restore_on_the_host_is_refused(self):
        self.runner.run(_restore_task('prepare', 'p'))
        report = self.runner.run(_restore_task('prepare', 'q', restore_id=6,
                                               files=('glance',)))
        self.assertEqual(states.FAILED, report['status'])
        self.assertIn('(restore 5)', report['error'])


class SpaceGuardTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.storage = local.LocalStorage(
            self.cfg.conf, path=os.path.join(self.state_dir, 'store'))
        self.reporter = test_runner.Recorder()
        self.driver = test_runner.FakeDriver(self.cfg.conf)
        self.runner = runner.TaskRunner(
            self.cfg.conf, 'node1', {'fake': self.driver}, self.storage,
            self.reporter, journal.Journal(os.path.join(self.state_dir,
                                                        'j')))

    def test_fails_fast_against_the_last_backup_size(self):
        self.assertEqual(states.SUCCEEDED, self.runner.run(
            test_runner._task(task_id='t1'))['status'])
        self.assertEqual(4, self.runner.space.expected('fake', {}))
        with mock.patch.object(self.storage, 'free_bytes', return_value=3):
            report = self.runner.run(test_runner._task(task_id='t2'))
        self.assertEqual(states.FAILED, report['status'])
        self.assertEqual(
            'Not enough free space on backup target local for fake: the '
            'last backup of fake on node1 took 4 B, 4 B with the 20% '
            'margin, and only 3 B are free; nothing was written',
            report['error'])
        self.assertEqual(1, self.driver.runs)
        with mock.patch.object(self.storage, 'free_bytes', return_value=5):
            self.assertEqual(states.SUCCEEDED, self.runner.run(
                test_runner._task(task_id='t3'))['status'])

    def test_the_conductor_may_send_the_expected_size(self):
        task = test_runner._task()
        task['params'] = {'expected_bytes': 10 * 2 ** 20}
        with mock.patch.object(self.storage, 'free_bytes',
                               return_value=2 ** 20):
            report = self.runner.run(task)
        self.assertIn('took 10.0 MiB, 12.0 MiB with the 20% margin, and '
                      'only 1.0 MiB are free', report['error'])
        self.assertEqual(0, self.driver.runs)

    def test_disk_full_mid_write_leaves_nothing(self):
        def full(writer, data):
            raise local._space_error(OSError(errno.ENOSPC, 'full'),
                                     writer.final_path)
        with mock.patch.object(local.LocalWriter, 'write', full):
            report = self.runner.run(test_runner._task())
        self.assertEqual(states.FAILED, report['status'])
        self.assertIn('No space left on the backup target', report['error'])
        leftovers = [f for _d, _s, files in os.walk(self.storage.path)
                     for f in files]
        self.assertEqual([], leftovers)
        self.assertIsNone(self.runner.space.expected('fake', {}))
