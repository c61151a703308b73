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

from osbackup import records
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

    def start_held_backup(self):
        """A backup whose dump is running and held until released."""
        started, _ = self.fleet.manage_json('backup', 'create', '--host',
                                            self.host, '--service', 'mysql')
        (task,) = started['tasks']
        test_faults.wait_for('the dump to start', lambda: os.path.exists(
            self.mode_file + '.started'))
        # The outage starts once the conductor knows the task runs.
        test_faults.wait_for('the task to be RUNNING', lambda: (
            self.task_status(task) == 'RUNNING'))
        return started, task

    def task_status(self, task):
        return fleet_mod.sql("SELECT status FROM tasks WHERE id = '%s'"
                             % task['id'], self.fleet.catalogue_db).strip()

    def finish_during_outage(self, task, down):
        """Let the dump end, then keep the outage up to OUTAGE seconds."""
        os.unlink(self.mode_file)
        test_faults.wait_for('the task to end on the agent', lambda: (
            self.journal(task['id']) or {}).get('state') == 'done',
            timeout=OUTAGE)
        self.assertEqual('SUCCEEDED',
                         self.journal(task['id'])['report']['status'])
        time.sleep(max(0, OUTAGE - (time.monotonic() - down)))

    def assert_nothing_lost(self, backup_id):
        """The backup SUCCEEDED; storage holds its artifact and record."""
        backup = self.wait_backup(backup_id, timeout=60)
        self.assertEqual('SUCCEEDED', backup['status'], backup)
        (done,) = backup['tasks']
        self.assertEqual(('SUCCEEDED', None), (done['status'],
                                               done['error']))
        (art,) = test_faults.available(backup)
        self.assertEqual(self.db, art['name'])
        self.assert_intact(art)
        accounts = [a['location'] for a in backup['artifacts']
                    if a['kind'] == 'accounts']
        self.assertEqual(sorted([art['location']] + accounts),
                         test_faults.stored_files(self.fleet.storage,
                                                  records=False))
        self.assertEqual([os.path.join(self.fleet.storage,
                                       records.key_of(backup['uuid']))],
                         [f for f in test_faults.stored_files(
                             self.fleet.storage)
                          if f not in [art['location']] + accounts])

    def test_broker_down_longer_than_the_timeout_loses_nothing(self):
        fleet = self.fleet
        started, task = self.start_held_backup()
        self.rabbit.stop_app()
        # The archive is written while no report can be sent: progress
        # does not hold the data path.
        self.finish_during_outage(task, time.monotonic())
        # Twice the silence timeout, and the task is still running.
        self.assertEqual('RUNNING', self.task_status(task))
        self.rabbit.start_app()
        self.assert_nothing_lost(started['id'])
        # The result can be recorded before the next periodic probe
        # proves the conductor hears again: wait for that proof.
        test_faults.wait_for('task deadlines to resume', lambda: (
            'task deadlines resume' in fleet.log('conductor')), timeout=30)
        log = fleet.log('conductor')
        self.assertIn('task deadlines are paused', log)
        self.assertNotIn('timed out', log)

    def test_conductor_down_longer_than_the_timeout_loses_nothing(self):
        started, task = self.start_held_backup()
        self.fleet.stop('conductor', signal.SIGKILL)
        # The agent ends its task while no conductor runs: the report
        # waits in the broker.
        self.finish_during_outage(task, time.monotonic())
        # Restarted, it reads the queued result before judging deadlines.
        self.fleet.start_conductor(sections=self.conductor_sections)
        self.assert_nothing_lost(started['id'])
