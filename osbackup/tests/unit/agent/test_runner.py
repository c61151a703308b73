"""The agent's task runner with fake drivers and a recording reporter."""

import datetime
import logging
import os
import threading
import time

import fixtures
from oslo_utils import timeutils

from osbackup.agent import journal
from osbackup.agent import runner
from osbackup.drivers import base as driver_base
from osbackup import exception
from osbackup import states
from osbackup.storage import local
from osbackup.tests import base


class Recorder:
    def __init__(self):
        self.events = []

    def started(self, task):
        self.events.append(('started', task['id']))

    def progress(self, task, nbytes, nfiles):
        self.events.append(('progress', task['id'], nbytes, nfiles))

    def finished(self, task, status, result, error):
        self.events.append(('finished', task['id'], status, result, error))

    def final(self):
        return [e for e in self.events if e[0] == 'finished']


class FakeDriver(driver_base.ServiceDriver):
    name = 'fake'

    def __init__(self, conf, present=True, fail=None, gate=None):
        super().__init__(conf)
        self.present = present
        self.fail = fail
        self.gate = gate
        self.runs = 0

    def is_present(self):
        return self.present

    def backup(self, ctx):
        self.runs += 1
        if self.gate:
            self.gate.wait(5)
        ctx.progress(10, 1)
        if self.fail:
            raise self.fail
        with ctx.storage.open_writer(ctx.key('fake', '.bin')) as w:
            w.write(b'data')
            location = w.commit()
        ctx.split.update(read=0.25, fsync=0.5)
        return [driver_base.Artifact('fake', 'files', location, 4, 'x')]


def _task(host='node1', service='fake', seconds=600, task_id='t1'):
    expires = timeutils.utcnow() + datetime.timedelta(seconds=seconds)
    return {'id': task_id, 'kind': 'backup', 'host': host,
            'service': service, 'backup_id': 7, 'params': {},
            'expires_at': expires.isoformat() + 'Z'}


class TaskRunnerTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.store_dir = os.path.join(self.state_dir, 'store')
        self.storage = local.LocalStorage(self.cfg.conf, path=self.store_dir)
        self.reporter = Recorder()
        self.driver = FakeDriver(self.cfg.conf)
        self.journal = journal.Journal(os.path.join(self.state_dir, 'j'))
        self.runner = runner.TaskRunner(self.cfg.conf, 'node1',
                                        {'fake': self.driver}, self.storage,
                                        self.reporter, self.journal)

    def test_backup_reports_start_and_artifacts(self):
        self.flags(start_report_delay=0, group='agent')
        task = _task()
        self.assertTrue(self.runner.accept(task))
        report = self.runner.run(task)
        self.assertEqual(states.SUCCEEDED, report['status'])
        self.assertEqual(('started', 't1'), self.reporter.events[0])
        (final,) = self.reporter.final()
        self.assertEqual(states.SUCCEEDED, final[2])
        art = final[3]['artifacts'][0]
        self.assertTrue(os.path.isfile(art['location']))
        self.assertTrue(art['location'].startswith(
            os.path.join(self.store_dir, 'node1', '7', 'fake')))

    def test_backup_reports_its_split_in_result_and_log(self):
        log = self.useFixture(fixtures.FakeLogger(
            name='osbackup.agent.runner', level=logging.INFO))
        task = _task()
        self.runner.run(task)
        (final,) = self.reporter.final()
        self.assertEqual({'read': 0.25, 'fsync': 0.5}, final[3]['split'])
        self.assertIn('Task t1 split: read 0.250 s, fsync 0.500 s',
                      log.output)

    def test_quick_task_sends_no_start_report(self):
        task = _task()
        self.runner.run(task)
        self.assertEqual(['finished'], [e[0] for e in self.reporter.events])

    def test_slow_task_reports_its_start_after_the_delay(self):
        self.flags(start_report_delay=0.05, group='agent')
        self.driver.gate = threading.Event()
        task = _task()
        worker = threading.Thread(target=self.runner.run, args=(task,))
        worker.start()
        self.addCleanup(worker.join)
        self.addCleanup(self.driver.gate.set)
        for _ in range(200):
            if self.reporter.events:
                break
            time.sleep(0.01)
        self.assertEqual([('started', 't1')], self.reporter.events)
        self.driver.gate.set()
        worker.join()
        self.assertEqual(['started', 'finished'],
                         [e[0] for e in self.reporter.events])

    def test_redelivered_task_runs_once_and_resends_result(self):
        task = _task()
        self.assertTrue(self.runner.accept(task))
        self.runner.run(task)
        self.assertFalse(self.runner.accept(task))
        self.assertEqual(1, self.driver.runs)
        finals = self.reporter.final()
        self.assertEqual(2, len(finals))
        self.assertEqual(finals[0], finals[1])

    def test_absent_service_is_skipped(self):
        self.driver.present = False
        report = self.runner.run(_task())
        self.assertEqual(states.SKIPPED, report['status'])
        self.assertIn('not present', report['result']['reason'])

    def test_driver_not_enabled_is_skipped(self):
        report = self.runner.run(_task(service='glance'))
        self.assertEqual(states.SKIPPED, report['status'])

    def test_driver_error_fails_with_message(self):
        self.driver.fail = exception.DumpFailed('mysqldump exited 2')
        report = self.runner.run(_task())
        self.assertEqual(states.FAILED, report['status'])
        self.assertEqual('mysqldump exited 2', report['error'])

    def test_unexpected_error_fails_task(self):
        self.driver.fail = RuntimeError('boom')
        report = self.runner.run(_task())
        self.assertEqual(states.FAILED, report['status'])
        self.assertIn('boom', report['error'])

    def test_wrong_host_and_expired_task_rejected(self):
        self.assertRaises(exception.TaskRejected, self.runner.check,
                          _task(host='other'))
        err = self.assertRaises(exception.TaskRejected, self.runner.check,
                                _task(seconds=-5))
        self.assertIn('expired', err.message)
        report = self.runner.run(_task(seconds=-5))
        self.assertEqual(states.FAILED, report['status'])
        self.assertEqual(0, self.driver.runs)

    def test_expiry_is_judged_by_the_conductors_clock(self):
        now = time.time()
        # This node is 300 s ahead of the conductor.
        self.runner.clock.add_round_trip(now, now - 300, now)
        # Deliverable for 60 s more in the conductor's clock, though this
        # node's clock says it expired 240 s ago.
        self.runner.check(_task(seconds=-240))
        err = self.assertRaises(exception.TaskRejected, self.runner.check,
                                _task(seconds=-400))
        self.assertIn('refusing to run it late (clock skew of +300 s',
                      err.message)

    def test_expired_task_names_an_apparent_skew_as_such(self):
        # No round trip: casts arriving 300 s "older" than issued.
        now = int(time.time())
        self.runner.clock.add_received(now - 300, received=now)
        err = self.assertRaises(exception.TaskRejected, self.runner.check,
                                _task(seconds=-5))
        self.assertIn('a clock skew of +300 s, or a delivery that late',
                      err.message)

    def test_same_service_twice_at_once_is_refused(self):
        gate = threading.Event()
        self.driver.gate = gate
        first = threading.Thread(target=self.runner.run, args=(_task(),))
        first.start()
        while self.driver.runs == 0:
            threading.Event().wait(0.01)
        report = self.runner.run(_task(task_id='t2'))
        gate.set()
        first.join()
        self.assertEqual(states.FAILED, report['status'])
        self.assertIn('Another operation on fake', report['error'])

    def test_recover_fails_interrupted_tasks_and_removes_partials(self):
        task = _task()
        self.journal.begin(task)
        writer = self.storage.open_writer('node1/7/fake/fake.bin')
        writer.write(b'half')
        other = self.storage.open_writer('node2/7/fake/fake.bin')
        other.write(b'someone else')
        self.runner.recover()
        (final,) = self.reporter.final()
        self.assertEqual(states.FAILED, final[2])
        self.assertIn('stopped while running', final[4])
        self.assertFalse(os.path.exists(writer.partial_path))
        # Another node's write on shared storage is left alone.
        self.assertTrue(os.path.exists(other.partial_path))
        self.assertEqual([], self.journal.interrupted())

    def test_recover_lets_drivers_undo_first_and_survives_their_errors(self):
        calls = []

        class Undoing(FakeDriver):
            def recover(self):
                calls.append('undo')
                raise RuntimeError('server down')
        self.runner.drivers['undo'] = Undoing(self.cfg.conf)
        task = _task()
        self.journal.begin(task)
        self.runner.recover()
        self.assertEqual(['undo'], calls)
        (final,) = self.reporter.final()
        self.assertEqual(states.FAILED, final[2])

    def test_stopping_agent_cancels_running_work(self):
        self.runner.stopping.set()
        report = self.runner.run(_task())
        self.assertEqual(states.FAILED, report['status'])
        self.assertIn('stopping', report['error'])
        self.assertEqual([], os.listdir(self.store_dir)
                         if os.path.exists(self.store_dir) else [])
