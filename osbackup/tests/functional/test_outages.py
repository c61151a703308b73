"""Outages longer than a task timeout lose nothing.

The broker is a private RabbitMQ node (rabbitmq_server.py) that the test
stops with ``rabbitmqctl stop_app``, for twice the conductor's silence
timeout, while a backup runs: the agent finishes its archive during the
outage, the conductor does not time the task out, and once the broker is
back the backup ends SUCCEEDED with its artifact recorded and nothing
unknown left in storage. The same holds for a conductor killed for as
long: restarted, it reads the result queued for it first.
"""

import json
import os
import signal
import tempfile
import time

import testtools

from osbackup.tests.functional import fleet as fleet_mod
from osbackup.tests.functional import rabbitmq_server
from osbackup.tests.functional import test_faults

SILENCE_TIMEOUT = 6
OUTAGE = 12

# Reconnect within a second or two of the broker's return, not after
# oslo.messaging's default backoff of up to 30 s.
FAST_RECONNECT = {'oslo_messaging_rabbit': {
    'rabbit_retry_interval': '1', 'rabbit_retry_backoff': '0',
    'rabbit_interval_max': '1'}}


class BrokerOutageTest(test_faults.FaultTestMixin, testtools.TestCase):

    def setUp(self):
        super().setUp()
        why = rabbitmq_server.available()
        if why:
            self.skipTest('broker outage tests need a private RabbitMQ '
                          'node: %s' % why)
        self.rabbit = rabbitmq_server.PrivateBroker(
            tempfile.mkdtemp(prefix='osbackup-rabbit-'))
        self.addCleanup(self.rabbit.stop)
        self.rabbit.start()
        self.fleet = fleet = fleet_mod.Fleet(broker=self.rabbit)
        self.addCleanup(fleet.cleanup)
        self.db = fleet.create_database('data', {'items': 100})
        self.mode_file = os.path.join(fleet.dir, 'dump-mode')
        with open(self.mode_file, 'w') as f:
            f.write('hold')
        self.host = fleet.host('ctl')
        self.conductor_sections = dict(FAST_RECONNECT, conductor={
            'task_start_timeout': str(SILENCE_TIMEOUT),
            'task_silence_timeout': str(SILENCE_TIMEOUT),
            'periodic_interval': '1'})
        fleet.start_conductor(sections=self.conductor_sections)
        fleet.start_agent('ctl', dict(FAST_RECONNECT, agent={
            'drivers': 'mysql', 'progress_interval': '1'}, mysql={
            'databases': self.db,
            'mysqldump_path': test_faults.dump_wrapper(fleet)}),
            env={'OSBACKUP_DUMP_MODE_FILE': self.mode_file})
        fleet.wait_for_agents([self.host])

    def journal(self, task_id):
        path = os.path.join(self.fleet.dir, 'state', self.host, 'agent',
                            'tasks', task_id + '.json')
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def test_broker_down_longer_than_the_timeout_loses_nothing(self):
        fleet = self.fleet
        started, _ = fleet.manage_json('backup', 'create', '--host',
                                       self.host, '--service', 'mysql')
        (task,) = started['tasks']
        test_faults.wait_for('the dump to start', lambda: os.path.exists(
            self.mode_file + '.started'))
        self.rabbit.stop_app()
        down = time.monotonic()
        os.unlink(self.mode_file)
        # The archive is written while no report can be sent: progress
        # does not hold the data path.
        test_faults.wait_for('the task to end on the agent', lambda: (
            self.journal(task['id']) or {}).get('state') == 'done',
            timeout=OUTAGE)
        self.assertEqual('SUCCEEDED',
                         self.journal(task['id'])['report']['status'])
        time.sleep(max(0, OUTAGE - (time.monotonic() - down)))
        # Twice the silence timeout, and the task is still running.
        self.assertEqual('RUNNING\n', fleet_mod.sql(
            "SELECT status FROM tasks WHERE id = '%s'" % task['id'],
            fleet.catalogue_db))
        self.rabbit.start_app()
        backup = self.wait_backup(started['id'], timeout=60)
        self.assertEqual('SUCCEEDED', backup['status'], backup)
        (done,) = backup['tasks']
        self.assertEqual(('SUCCEEDED', None), (done['status'],
                                               done['error']))
        (art,) = test_faults.available(backup)
        self.assertEqual(self.db, art['name'])
        self.assert_intact(art)
        # Nothing in storage that the catalogue does not know.
        self.assertEqual([art['location']],
                         test_faults.stored_files(fleet.storage))
        log = fleet.log('conductor')
        self.assertIn('task deadlines are paused', log)
        self.assertIn('task deadlines resume', log)
        self.assertNotIn('timed out', log)

    def test_conductor_down_longer_than_the_timeout_loses_nothing(self):
        fleet = self.fleet
        started, _ = fleet.manage_json('backup', 'create', '--host',
                                       self.host, '--service', 'mysql')
        (task,) = started['tasks']
        test_faults.wait_for('the dump to start', lambda: os.path.exists(
            self.mode_file + '.started'))
        fleet.stop('conductor', signal.SIGKILL)
        down = time.monotonic()
        # The agent ends its task while no conductor runs: the report
        # waits in the broker.
        os.unlink(self.mode_file)
        test_faults.wait_for('the task to end on the agent', lambda: (
            self.journal(task['id']) or {}).get('state') == 'done',
            timeout=OUTAGE)
        time.sleep(max(0, OUTAGE - (time.monotonic() - down)))
        # Restarted, it reads the queued result before judging deadlines.
        fleet.start_conductor(sections=self.conductor_sections)
        backup = self.wait_backup(started['id'], timeout=60)
        self.assertEqual('SUCCEEDED', backup['status'], backup)
        (done,) = backup['tasks']
        self.assertEqual(('SUCCEEDED', None), (done['status'],
                                               done['error']))
        (art,) = test_faults.available(backup)
        self.assert_intact(art)
        self.assertEqual([art['location']],
                         test_faults.stored_files(fleet.storage))
