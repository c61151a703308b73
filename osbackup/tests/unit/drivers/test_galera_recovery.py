"""Choosing the member that starts a cluster again after an outage."""

import os

from osbackup.drivers import galera_recovery as recovery
from osbackup import exception
from osbackup.tests import base

UUID = '212b1a16-eeee-11f1-a293-cb29317f23d9'


class RecoveryTest(base.TestCase):

    def grastate(self, seqno, safe=0):
        datadir = os.path.join(self.state_dir, 'data')
        os.makedirs(datadir, exist_ok=True)
        with open(os.path.join(datadir, recovery.GRASTATE), 'w') as f:
            f.write('# GALERA saved state\nversion: 2.1\nuuid:    %s\n'
                    'seqno:   %d\nsafe_to_bootstrap: %d\n'
                    % (UUID, seqno, safe))
        return datadir

    def test_clean_stop_position_comes_from_grastate(self):
        datadir = self.grastate(42, safe=1)
        self.assertEqual(recovery.Position('db1', UUID, 42, True),
                         recovery.position('db1', datadir, ['false']))

    def test_crash_without_a_recovered_position_is_an_error(self):
        datadir = self.grastate(-1)
        exc = self.assertRaises(exception.RestoreFailed, recovery.position,
                                'db1', datadir, ['true'])
        self.assertIn('--wsrep-recover on db1 found no position',
                      exc.message)

    def test_not_a_member_datadir(self):
        self.assertRaises(exception.InvalidInput, recovery.read_grastate,
                          self.state_dir)

    def test_highest_seqno_bootstraps(self):
        positions = [recovery.Position('db1', UUID, 10, False),
                     recovery.Position('db2', UUID, 12, False),
                     recovery.Position('db3', UUID, 12, True)]
        self.assertEqual('db3', recovery.choose_bootstrap(positions).host)

    def test_two_histories_are_refused(self):
        exc = self.assertRaises(
            exception.InvalidInput, recovery.choose_bootstrap,
            [recovery.Position('db1', UUID, 10, False),
             recovery.Position('db2', 'other-uuid', 99, False)])
        self.assertIn('different cluster histories', exc.message)
        self.assertIn('db2 other-uuid:99', exc.message)

    def test_mark_safe_to_bootstrap(self):
        datadir = self.grastate(7)
        recovery.mark_safe_to_bootstrap(datadir)
        state = recovery.read_grastate(datadir)
        self.assertEqual(('1', '7', UUID), (state['safe_to_bootstrap'],
                                            state['seqno'], state['uuid']))
