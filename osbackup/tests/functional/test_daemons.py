"""The daemons' life cycle with real processes: locks, stop, goodbye.

A conductor and agents as real processes on the fleet's own vhost of the
shared RabbitMQ (never stopped or reconfigured here) or on a private
RabbitMQ node for broker outages.
"""

import json
import os
import re
import signal
import socket
import tempfile
import time

import testtools

from osbackup.tests.functional import fleet as fleet_mod
from osbackup.tests.functional import host_tools
from osbackup.tests.functional import rabbitmq_server
from osbackup.tests.functional import test_faults

wait_for = test_faults.wait_for


class FleetCase(testtools.TestCase):
    """A fresh fleet per test with a compute node tree."""

    def setUp(self):
        super().setUp()
        self.fleet = fleet_mod.Fleet()
        self.addCleanup(self.fleet.cleanup)
        fleet_mod.make_compute_tree(self.fleet.node_root('cmp'))
        self.host = self.fleet.host('cmp')

    def agents(self):
        return {a['host']: a for a in
                self.fleet.manage_json('agent', 'list')[0]}


class StateDirectoryLockTest(FleetCase):

    def test_second_agent_on_same_state_path_exits_2_naming_it(self):
        fleet = self.fleet
        fleet.start_conductor()
        first = fleet.start_agent('cmp', {'agent': {'drivers': 'nova'}})
        fleet.wait_for_agents([self.host])
        # The same config file: the same state_path and host.
        second = fleet.start('cmp-again', 'osbackup.cmd.agent',
                             fleet.conf_path('cmp'))
        self.assertEqual(2, second.wait(60))
        out = fleet.log('cmp-again')
        state = os.path.join(fleet.dir, 'state', self.host)
        errors = [line for line in out.splitlines() if 'ERROR' in line]
        self.assertEqual(
            ['ERROR: Another osbackup-agent (pid %d) uses the state '
             'directory %s ([DEFAULT] state_path): give each agent its own'
             % (first.pid, state)], errors, out)
        self.assertNotIn('Traceback', out)
        # The first one is untouched and still works.
        self.assertIsNone(first.poll())
        fleet.manage_json('backup', 'create', '--wait', '--host', self.host,
                          '--service', 'nova')


#: What a SIGTERM may take at most here (systemd waits 90 s by default
#: before it kills; "a few seconds" is the aim, measured in the logs).
STOP_BOUND = 15


def timed_stop(fleet, name) -> float:
    """SIGTERM ``name``; seconds it took to exit 0 (fails past the bound)."""
    began = time.monotonic()
    code = fleet.stop(name, signal.SIGTERM, timeout=STOP_BOUND)
    took = time.monotonic() - began
    print('%s stopped in %.1f s after SIGTERM (exit %s)'
          % (name, took, code))
    if code != 0:
        raise AssertionError('%s exited %s after SIGTERM:\n%s'
                             % (name, code, fleet.log(name)[-3000:]))
    return took


class GoodbyeTest(FleetCase):
    """A clean stop is seen at once; retired hosts can be deleted."""

    def test_stopped_agent_is_down_at_once_then_deleted(self):
        fleet = self.fleet
        # agent_down_time far longer than the test: only the goodbye can
        # make the agent down in time.
        fleet.start_conductor(sections={'conductor': {
            'agent_down_time': '600'}})
        fleet.start_agent('cmp', {'agent': {'drivers': 'nova'}})
        proc = fleet.manage('agent', 'wait', self.host, '--timeout', '60')
        self.assertIn('a conductor answers', proc.stdout)
        refused = fleet.manage('agent', 'delete', self.host, check=False)
        self.assertEqual(2, refused.returncode)
        self.assertIn('Agent %s is up: stop it first, or use --force'
                      % self.host, refused.stderr)
        timed_stop(fleet, 'cmp')
        agent = wait_for('the goodbye to be recorded', lambda: (
            self.agents()[self.host]['state'] == 'stopped'
            and self.agents()[self.host]), timeout=10)
        self.assertIn('stopped cleanly at', agent['reason'])
        began = time.monotonic()
        proc = fleet.manage('backup', 'create', '--host', self.host,
                            check=False)
        self.assertEqual(2, proc.returncode)
        self.assertIn('Agent(s) down, not backing up: %s (stopped)'
                      % self.host, proc.stderr)
        self.assertLess(time.monotonic() - began, 30)
        waited = fleet.manage('agent', 'wait', self.host, '--timeout', '3',
                              check=False)
        self.assertEqual(1, waited.returncode)
        self.assertEqual(['ERROR: timed out after 3 s: agent(s) not up: %s '
                          '(stopped) (see "osbackup-manage agent list")'
                          % self.host], [line for line in
                                         waited.stderr.splitlines()
                                         if line.startswith('ERROR')])
        deleted = fleet.manage('agent', 'delete', self.host)
        self.assertIn('Agent %s deleted (it was stopped)' % self.host,
                      deleted.stdout)
        self.assertNotIn(self.host, self.agents())
        # Started again, it is back (and can be forced out while up).
        fleet.start_agent('cmp', {'agent': {'drivers': 'nova'}})
        fleet.manage('agent', 'wait', self.host, '--timeout', '60')
        fleet.manage('agent', 'delete', self.host, '--force')

    def test_backups_of_a_deleted_host_stay(self):
        fleet = self.fleet
        fleet.start_conductor()
        fleet.start_agent('cmp', {'agent': {'drivers': 'nova'}})
        fleet.manage('agent', 'wait', self.host)
        backup, _ = fleet.manage_json('backup', 'create', '--wait')
        timed_stop(fleet, 'cmp')
        fleet.manage('agent', 'delete', self.host)
        shown, _ = fleet.manage_json('backup', 'show', str(backup['id']))
        self.assertEqual(('SUCCEEDED', [self.host]),
                         (shown['status'], shown['hosts']))
        # An idle conductor stops promptly too.
        self.assertLess(timed_stop(fleet, 'conductor'), STOP_BOUND)

    def test_wait_times_out_when_no_conductor_answers(self):
        fleet = self.fleet
        fleet.start_conductor()
        fleet.start_agent('cmp', {'agent': {'drivers': 'nova'}})
        fleet.manage('agent', 'wait', self.host, '--timeout', '60')
        # SIGKILL: no goodbye, the agent stays up in the catalogue.
        fleet.stop('conductor', signal.SIGKILL)
        waited = fleet.manage('agent', 'wait', self.host, '--timeout', '8',
                              check=False)
        self.assertEqual(1, waited.returncode, waited.stdout)
        self.assertIn('ERROR: timed out after 8 s: no conductor answered',
                      waited.stderr)
        self.assertNotIn('Traceback', waited.stderr)


def closed_port() -> int:
    """A loopback port nothing listens on (the broker "moved")."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class SigtermUnreachableBrokerTest(FleetCase):
    """Both daemons stop promptly while they cannot reach the broker."""

    def setUp(self):
        super().setUp()
        self.sections = {'DEFAULT': {
            'transport_url': 'rabbit://guest:guest@127.0.0.1:%d/x'
                             % closed_port()}}

    def start_both(self):
        self.fleet.start_conductor(sections=self.sections)
        self.fleet.start_agent('cmp', dict(self.sections,
                                           agent={'drivers': 'nova'}))

    def test_wrong_port_after_retrying(self):
        self.start_both()
        # Long enough for several failed connection attempts.
        wait_for('both to retry the broker', lambda: all(
            'Connection refused' in self.fleet.log(n) or
            'ECONNREFUSED' in self.fleet.log(n)
            for n in ('conductor', 'cmp')), timeout=60)
        time.sleep(3)
        self.assertLess(timed_stop(self.fleet, 'cmp'), STOP_BOUND)
        self.assertLess(timed_stop(self.fleet, 'conductor'), STOP_BOUND)

    def test_while_connecting(self):
        self.start_both()
        # Both are connecting (the imports take about a second).
        wait_for('both to start connecting', lambda: all(
            'Starting osbackup-' in self.fleet.log(n)
            for n in ('conductor', 'cmp')), timeout=60, interval=0.05)
        for name in ('cmp', 'conductor'):
            self.assertLess(timed_stop(self.fleet, name), STOP_BOUND)


class SigtermStoppedBrokerTest(testtools.TestCase):
    """A private RabbitMQ node stopped (stop_app) under both daemons."""

    def setUp(self):
        super().setUp()
        why = rabbitmq_server.available()
        if why:
            self.skipTest('needs a private RabbitMQ node: %s' % why)
        self.rabbit = rabbitmq_server.PrivateBroker(
            tempfile.mkdtemp(prefix='osbackup-rabbit-'))
        self.addCleanup(self.rabbit.stop)
        self.rabbit.start()
        self.fleet = fleet_mod.Fleet(broker=self.rabbit)
        self.addCleanup(self.fleet.cleanup)
        fleet_mod.make_compute_tree(self.fleet.node_root('cmp'))
        self.host = self.fleet.host('cmp')

    def test_broker_stopped(self):
        fleet = self.fleet
        fleet.start_conductor()
        fleet.start_agent('cmp', {'agent': {'drivers': 'nova'}})
        fleet.wait_for_agents([self.host])
        self.rabbit.stop_app()
        time.sleep(5)
        self.assertLess(timed_stop(fleet, 'cmp'), STOP_BOUND)
        self.assertLess(timed_stop(fleet, 'conductor'), STOP_BOUND)


class SigtermMidTaskTest(FleetCase):
    """SIGTERM during a backup: cancelled, consistent, nothing visible."""

    def test_running_backup_is_cancelled_safely(self):
        fleet = self.fleet
        db = fleet.create_database('data', {'items': 100})
        mode_file = os.path.join(fleet.dir, 'dump-mode')
        with open(mode_file, 'w') as f:
            f.write('hold')
        fleet.start_conductor()
        fleet.start_agent('cmp', {'agent': {'drivers': 'mysql'}, 'mysql': {
            'databases': db,
            'mysqldump_path': test_faults.dump_wrapper(fleet)}},
            env={'OSBACKUP_DUMP_MODE_FILE': mode_file})
        fleet.wait_for_agents([self.host])
        started, _ = fleet.manage_json('backup', 'create', '--host',
                                       self.host, '--service', 'mysql')
        (task,) = started['tasks']
        wait_for('the dump to start', lambda: os.path.exists(
            mode_file + '.started'))
        took = timed_stop(fleet, 'cmp')
        self.assertLess(took, STOP_BOUND)
        # The task ended on the agent, and its end reached the conductor
        # before the goodbye.
        path = os.path.join(fleet.dir, 'state', self.host, 'agent',
                            'tasks', task['id'] + '.json')
        with open(path) as f:
            record = json.load(f)
        self.assertEqual(('done', 'FAILED'),
                         (record['state'], record['report']['status']))
        backup = wait_for('the backup to end', lambda: (
            lambda b: b['status'] != 'RUNNING' and b)(fleet.manage_json(
                'backup', 'show', str(started['id']))[0]), timeout=30)
        self.assertEqual('FAILED', backup['status'])
        (done,) = backup['tasks']
        self.assertEqual('FAILED', done['status'])
        self.assertIn('stopping', done['error'])
        self.assertEqual([], test_faults.available(backup))
        # Nothing half-written is left in storage or staging.
        self.assertEqual([], test_faults.stored_files(fleet.storage))
        self.assertEqual([], test_faults.stored_files(os.path.join(
            fleet.dir, 'state', self.host, 'agent', 'scratch')))
        self.assertEqual('stopped', self.agents()[self.host]['state'])


def shifted_clock(seconds: int) -> tuple:
    """A command prefix running a program with its clock ``seconds`` ahead.

    libfaketime (LD_PRELOAD) shifts the wall clock only: monotonic clocks
    stay true, so timeouts and waits behave.
    """
    faketime = host_tools.require(host_tools.FAKETIME)['faketime']
    return (faketime, '-f', '%+ds' % seconds)


class ClockSkewTest(FleetCase):
    """Agents whose clocks run ahead: named, and backups say why."""

    def test_skew_over_the_limit_is_named_and_under_it_works(self):
        fleet = self.fleet
        prefix_far, prefix_near = shifted_clock(300), shifted_clock(20)
        fleet_mod.make_compute_tree(fleet.node_root('near'))
        far, near = self.host, fleet.host('near')
        fleet.start_conductor()
        env = {'DONT_FAKE_MONOTONIC': '1'}
        fleet.start_agent('cmp', {'agent': {'drivers': 'nova'}}, env=env,
                          prefix=prefix_far)
        fleet.start_agent('near', {'agent': {'drivers': 'nova'}}, env=env,
                          prefix=prefix_near)
        fleet.manage('agent', 'wait', near, '--timeout', '60')
        agents = wait_for('the far agent to be listed skewed', lambda: (
            lambda a: a.get(far, {}).get('state') == 'skewed' and a)(
                self.agents()), timeout=60)
        self.assertAlmostEqual(300, agents[far]['clock_offset'], delta=3)
        self.assertIn('clock skew of +30', agents[far]['reason'])
        self.assertEqual('up', agents[near]['state'])
        self.assertAlmostEqual(20, agents[near]['clock_offset'], delta=3)
        table = fleet.manage('agent', 'list').stdout
        self.assertRegex(table, r'%s +\| skewed .*\| \+30[0-3] s ' % far)

        # Within the signatures' tolerance: backs up fine.
        backup, _ = fleet.manage_json('backup', 'create', '--wait',
                                      '--host', near)
        self.assertEqual('SUCCEEDED', backup['status'])
        # Beyond it: fails at once, naming the skew.
        backup, proc = fleet.manage_json('backup', 'create', '--wait',
                                         '--host', far, check=False)
        self.assertEqual((1, 'FAILED'), (proc.returncode, backup['status']))
        (task,) = backup['tasks']
        self.assertRegex(task['error'],
                         r'^agent %s has a clock skew of \+(29[7-9]|30[0-3]) '
                         r's, over the 60 s' % far)
        self.assertEqual([], test_faults.available(backup))
        # The far agent itself says what to check.
        wait_for('the far agent to name its clock', lambda: (
            "check this node's clock (NTP)" in fleet.log('cmp')), timeout=30)
        self.assertTrue(re.search(r'clock skew of \+(29[7-9]|30[0-3]) s',
                                  fleet.log('cmp')))


class RejectedAgentTest(FleetCase):
    """Agents the conductor refuses are visible on both sides."""

    def test_wrong_key_and_no_key_are_listed_rejected_and_logged(self):
        fleet = self.fleet
        fleet_mod.make_compute_tree(fleet.node_root('nokey'))
        other_key = os.path.join(fleet.dir, 'other.key')
        fleet_mod.write_file(other_key, os.urandom(32).hex() + '\n', 0o600)
        fleet.start_conductor()
        fleet.start_agent('cmp', {
            'DEFAULT': {'rpc_signing_key_file': other_key},
            'agent': {'drivers': 'nova', 'conductor_check_interval': '4'}})
        fleet.start_agent('nokey', {
            'DEFAULT': {'rpc_signing_key_file': ''},
            'agent': {'drivers': 'nova', 'conductor_check_interval': '4'}})
        nokey = fleet.host('nokey')
        agents = wait_for('both agents to be listed rejected', lambda: (
            lambda a: all(a.get(h, {}).get('state') == 'rejected'
                          for h in (self.host, nokey)) and a)(
                              self.agents()), timeout=60)
        for host in (self.host, nokey):
            self.assertIn('signed with another key', agents[host]['reason'])
            self.assertIn('rpc_signing_key_file', agents[host]['reason'])
            self.assertIsNone(agents[host]['version'])
        self.assertRegex(fleet.manage('agent', 'list').stdout,
                         r'%s +\| rejected ' % self.host)
        # The agents say so themselves, at ERROR, naming the option.
        for name in ('cmp', 'nokey'):
            wait_for('agent %s to log its refusal' % name, lambda: (
                "ERROR osbackup.agent.contact" in fleet.log(name)
                and "The conductor does not accept this agent's messages"
                in fleet.log(name)), timeout=30)
            self.assertIn('check [DEFAULT] rpc_signing_key_file',
                          fleet.log(name))
        # Once per interval (4 s), not once per heartbeat (2 s).
        refusal = "The conductor does not accept this agent's messages"
        before = fleet.log('cmp').count(refusal)
        time.sleep(12)
        self.assertIn(fleet.log('cmp').count(refusal) - before, (2, 3, 4))
        # The conductor logs each claimed sender and reason once a minute.
        events = [line for line in fleet.log('conductor').splitlines()
                  if 'SECURITY: rejected' in line and self.host in line]
        self.assertLessEqual(len(events), 4, events)
        # A backup of a rejected host is refused: it is not an agent.
        proc = fleet.manage('backup', 'create', '--host', self.host,
                            check=False)
        self.assertEqual(2, proc.returncode)
        self.assertIn('Unknown host', proc.stderr)
