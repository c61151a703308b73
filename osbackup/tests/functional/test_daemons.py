"""The daemons' life cycle with real processes: locks, stop, goodbye.

A conductor and agents as real processes on the fleet's own vhost of the
shared RabbitMQ (never stopped or reconfigured here) or on a private
RabbitMQ node for broker outages.
"""

import os

import testtools

from osbackup.tests.functional import fleet as fleet_mod
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
