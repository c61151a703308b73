"""Waiting for an operation: outages and restore progress (18.5, 20.8)."""

import io

import fixtures
from oslo_db import exception as db_exc

from osbackup.manage import waiting
from osbackup.tests import base


def _plan():
    return {'hosts': {'c1': {'files': [{'artifact': {'name': 'nova'},
                                        'paths': ['/etc/nova']}],
                             'databases': [{'database': 'nova'}],
                             'units': ['nova-api']}},
            'skipped': []}


class RestoreProgressTest(base.TestCase):

    def test_phases_and_steps_not_bytes(self):
        op = {'status': 'RUNNING', 'phase': 3, 'plan': _plan(),
              'steps': [{'status': 'SUCCEEDED'}] * 4,
              'tasks': [{'host': 'c1', 'status': 'RUNNING',
                         'kind': 'restore_load_db'}]}
        line = waiting.progress_line(op, 12)
        self.assertEqual('[  12s] RUNNING: phase 4/10 load_db, 4/8 steps '
                         'done, running on c1', line)
        self.assertNotIn('read', line)

    def test_total_does_not_change_as_phases_create_tasks(self):
        first = {'status': 'RUNNING', 'phase': 0, 'plan': _plan(),
                 'steps': [], 'tasks': [{'host': 'c1',
                                         'status': 'RUNNING'}]}
        later = dict(first, phase=3, steps=[{}] * 5,
                     tasks=first['tasks'] * 4)
        self.assertIn(' 0/8 steps', waiting.progress_line(first, 1))
        self.assertIn(' 5/8 steps', waiting.progress_line(later, 1))

    def test_rollback(self):
        op = {'status': 'RUNNING', 'phase': 100, 'plan': _plan(),
              'steps': [], 'tasks': []}
        self.assertIn('phase rollback', waiting.progress_line(op, 1))


class BackoffTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.sleep = self.useFixture(fixtures.MockPatch('time.sleep')).mock

    def _polls(self, n, **kw):
        ops = [{'status': 'RUNNING', 'tasks': []}] * n + [
            {'status': 'SUCCEEDED', 'tasks': []}]
        fetch = iter(ops).__next__
        op = waiting.wait(fetch, out=io.StringIO(), **kw)
        self.assertEqual('SUCCEEDED', op['status'])
        return [c.args[0] for c in self.sleep.call_args_list]

    def test_an_ended_operation_is_not_waited_for(self):
        self.assertEqual([], self._polls(0))

    def test_polls_back_off_up_to_the_interval(self):
        delays = self._polls(8, interval=1.0)
        self.assertEqual(waiting.FIRST_POLL, delays[0])
        self.assertEqual(sorted(delays), delays)
        self.assertLess(delays[0], delays[1])
        self.assertEqual(1.0, max(delays))
        self.assertEqual([1.0, 1.0], delays[-2:])

    def test_interval_below_the_first_poll(self):
        self.assertEqual([0.01] * 3, self._polls(3, interval=0.01))


class ProgressRateTest(base.TestCase):
    """Polls are frequent; the operator's terminal is not flooded."""

    def setUp(self):
        super().setUp()
        self.now = 0.0
        self.useFixture(fixtures.MockPatch(
            'time.monotonic', lambda: self.now))

        def sleep(seconds):
            self.now += seconds
        self.useFixture(fixtures.MockPatch('time.sleep', sleep))

    def test_progress_at_most_once_a_second_state_and_end_at_once(self):
        ops = ([{'status': 'PENDING', 'tasks': []}] +
               [{'status': 'RUNNING', 'tasks': [
                   {'status': 'RUNNING', 'progress_bytes': n << 20}]}
                for n in range(1, 13)] +
               [{'status': 'SUCCEEDED', 'tasks': [
                   {'status': 'SUCCEEDED', 'progress_bytes': 13 << 20}]}])
        out = io.StringIO()
        waiting.wait(iter(ops).__next__, out=out)
        lines = out.getvalue().splitlines()
        self.assertEqual(14, len(ops))
        statuses = [line.split(']')[1].split(':')[0].strip()
                    for line in lines]
        # First poll, the change to RUNNING, then about one line a second
        # of the ~2.5 s of 0.25 s polls, and the end.
        self.assertEqual('PENDING', statuses[0])
        self.assertEqual('RUNNING', statuses[1])
        self.assertEqual('SUCCEEDED', statuses[-1])
        self.assertLessEqual(len(lines), 6, lines)
        self.assertIn('13.0 MiB read', lines[-1])


class OutageTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.flags(group='database', retry_interval=1, max_retries=3)

    def _fetch(self, results):
        results = list(results)

        def fetch():
            item = results.pop(0)
            if isinstance(item, Exception):
                raise item
            return item
        return fetch

    def test_catalogue_outage_is_said_and_waited_out(self):
        self.useFixture(fixtures.MockPatch('time.sleep'))
        down = db_exc.DBConnectionError(OSError('Connection refused'))
        out = io.StringIO()
        op = waiting.wait(self._fetch(
            [{'status': 'RUNNING', 'tasks': []}, down, down,
             {'status': 'SUCCEEDED', 'tasks': []}]), interval=0, out=out)
        self.assertEqual('SUCCEEDED', op['status'])
        text = out.getvalue()
        self.assertEqual(1, text.count('Catalogue database unreachable '
                                       '(Connection refused)'), text)
        self.assertIn('Catalogue database reachable again', text)

    def test_gives_up_after_the_retry_budget(self):
        self.flags(group='database', retry_interval=1, max_retries=0)
        down = db_exc.DBConnectionError(OSError('Connection refused'))
        self.assertRaises(db_exc.DBConnectionError, waiting.wait,
                          self._fetch([down] * 5), interval=0,
                          out=io.StringIO())
