"""Reports off the data path: progress never blocks, results never lost."""

import os
import threading
import time

import fixtures
import oslo_messaging as messaging

from osbackup.agent import journal
from osbackup.agent import reporter
from osbackup.agent import runner
from osbackup.drivers import base as driver_base
from osbackup import states
from osbackup.storage import local
from osbackup.tests import base
from osbackup.tests.unit.agent import test_runner


class Broker:
    """A conductor API whose casts hang or fail while the broker is away.

    ``hang``: a cast blocks until the broker is back (oslo.messaging's
    reconnect loop); otherwise it fails at once.
    """

    def __init__(self, hang=True):
        self.back = threading.Event()
        self.back.set()
        self.hang = hang
        self.sent = []
        self.calls = 0
        self._lock = threading.Lock()

    def away(self):
        self.back.clear()

    def _cast(self, method, task_id, retry=None, **args):
        with self._lock:
            self.calls += 1
        if not self.back.is_set():
            if self.hang and retry is None:
                self.back.wait()
            else:
                raise messaging.MessageDeliveryFailure('broker away')
        with self._lock:
            self.sent.append((method, task_id) + tuple(sorted(args.items())))

    def task_started(self, ctxt, task_id, host, **kw):
        self._cast('started', task_id, **kw)

    def task_progress(self, ctxt, task_id, host, nbytes, nfiles, **kw):
        self._cast('progress', task_id, nbytes=nbytes, nfiles=nfiles,
                   **kw)

    def task_finished(self, ctxt, task_id, host, status, result, error,
                      **kw):
        self._cast('finished', task_id, status=status, **kw)

    def methods(self, task_id='t1'):
        return [s[0] for s in self.sent if s[1] == task_id]


def wait_until(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError('condition not met in %s s' % timeout)
        time.sleep(0.01)


class ChattyDriver(driver_base.ServiceDriver):
    """Writes an archive for 2.5 s, reporting progress every second."""

    name = 'fake'
    chunks = 50

    def is_present(self):
        return True

    def backup(self, ctx):
        with ctx.storage.open_writer(ctx.key('fake', '.bin')) as w:
            for _ in range(self.chunks):
                w.write(b'x' * 1024)
                ctx.progress(1024, 1)
                time.sleep(0.05)
            location = w.commit()
        return [driver_base.Artifact('fake', 'files', location,
                                     1024 * self.chunks, 'x')]


class ReporterTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.flags(progress_interval=1, start_report_delay=0, group='agent')
        for name in ('BACKOFF_MIN', 'BACKOFF_MAX'):
            self.useFixture(fixtures.MockPatchObject(reporter, name, 0.01))
        self.broker = Broker()
        self.journal = journal.Journal(os.path.join(self.state_dir, 'j'))
        self.reporter = reporter.ConductorReporter(self.broker, 'node1',
                                                   self.journal)
        self.addCleanup(self.reporter.stop, 0)
        self.addCleanup(self.broker.back.set)
        storage = local.LocalStorage(
            self.cfg.conf, path=os.path.join(self.state_dir, 'store'))
        self.runner = runner.TaskRunner(
            self.cfg.conf, 'node1', {'fake': ChattyDriver(self.cfg.conf)},
            storage, self.reporter, self.journal)

    def test_a_blocked_transport_does_not_stall_the_archive(self):
        self.broker.away()
        task = test_runner._task()
        self.runner.accept(task)
        worker = threading.Thread(target=self.runner.run, args=(task,))
        worker.start()
        worker.join(10)
        self.assertFalse(worker.is_alive(),
                         'the backup waited for the broker')
        self.assertEqual([], self.broker.sent)
        record = self.journal.get('t1')
        self.assertEqual(('done', states.SUCCEEDED, False),
                         (record['state'], record['report']['status'],
                          record['reported']))
        # Progress was tried at most once per value, never retried, and
        # not piled up: at most one value per task waits.
        self.assertLessEqual(len(self.reporter._progress), 1)
        self.broker.back.set()
        wait_until(lambda: 'finished' in self.broker.methods())
        methods = self.broker.methods()
        self.assertEqual('started', methods[0])
        self.assertEqual('finished', methods[-1])
        self.assertEqual(1, methods.count('finished'))
        wait_until(lambda: self.journal.get('t1')['reported'])

    def test_reliable_reports_are_retried_in_order_until_taken(self):
        self.broker.hang = False
        self.broker.away()
        task = test_runner._task()
        self.reporter.started(task)
        self.reporter.progress(task, 1, 1)
        self.reporter.progress(task, 2, 2)
        self.reporter.finished(task, states.SUCCEEDED, {}, None)
        wait_until(lambda: self.broker.calls >= 5)
        self.assertEqual([], self.broker.sent)
        self.broker.back.set()
        wait_until(lambda: self.reporter.pending() == 0)
        # The result dropped the progress still waiting behind it.
        self.assertEqual(['started', 'finished'], self.broker.methods())
        for sent in self.broker.sent:
            self.assertIn(('at_least_once', True), sent)

    def test_latest_progress_wins(self):
        self.broker.away()
        first = test_runner._task(task_id='first')
        self.reporter.started(first)    # holds the sender while away
        task = test_runner._task()
        for n in range(1000):
            self.reporter.progress(task, n, n)
        self.broker.back.set()
        wait_until(lambda: self.broker.methods('t1'))
        self.assertEqual([('progress', 't1', ('nbytes', 999),
                           ('nfiles', 999))],
                         [s for s in self.broker.sent if s[1] == 't1'])

    def test_a_result_unsent_at_stop_is_sent_by_the_next_process(self):
        self.broker.hang = False
        self.broker.away()
        task = test_runner._task()
        self.runner.accept(task)
        self.runner.run(task)
        self.reporter.stop(timeout=0.5)
        self.assertEqual([], self.broker.sent)
        self.broker.back.set()
        self.reporter = reporter.ConductorReporter(self.broker, 'node1',
                                                   self.journal)
        self.addCleanup(self.reporter.stop, 0)
        self.runner.reporter = self.reporter
        self.runner.recover()
        wait_until(lambda: self.reporter.pending() == 0)
        self.assertEqual(['finished'], self.broker.methods())
        self.assertTrue(self.journal.get('t1')['reported'])
        self.assertEqual([], self.journal.unreported())
