"""A Galera member's restore phases and their undo, with fake servers."""

import os
import tempfile
from unittest import mock

from osbackup.agent import restore
from osbackup.drivers import galera
from osbackup.drivers import galera_recovery
from osbackup import exception
from osbackup.storage import local
from osbackup.tests import base

UUID = '39081318-ef16-11f1-a43f-fb0115045bc7'


class FakeUnits:
    """The service manager: records calls; ``fail_starts`` fail first."""

    def __init__(self, server):
        self.server = server
        self.calls = []
        self.fail_starts = 0

    def start(self, unit):
        self.calls.append(('start', unit))
        if self.fail_starts:
            self.fail_starts -= 1
            raise exception.ServiceControlError('start of %s failed' % unit)
        self.server.up = True

    def stop(self, unit):
        self.calls.append(('stop', unit))
        self.server.up = False

    def is_active(self, unit):
        return self.server.up

    def exists(self, unit):
        return True


class FakeServer:
    """The node's wsrep state as the mysql client would read it."""

    def __init__(self):
        self.up = True
        self.size = 3

    def galera_state(self):
        if not self.up:
            raise exception.DumpFailed('no server')
        return galera.NodeState(UUID, 'Synced', self.size, 5, True, True,
                                1, False)


class FakePhysical:
    def __init__(self, datadir):
        self._datadir = datadir
        self._client = None

    def datadir(self):
        return self._datadir

    def check_stopped(self, datadir):
        pass

    def _own(self, fresh, datadir):
        pass


class GaleraMemberTest(base.TestCase):

    def setUp(self):
        super().setUp()
        top = tempfile.mkdtemp()
        self.addCleanup(__import__('shutil').rmtree, top, True)
        self.flags(state_path=os.path.join(top, 'state'))
        self.flags(units=['mariadb'], group='mysql')
        self.flags(bootstrap_command='galera-new', sync_timeout=2,
                   group='galera')
        self.datadir = os.path.join(top, 'data')
        os.makedirs(self.datadir)
        with open(os.path.join(self.datadir, 'ibdata1'), 'w') as f:
            f.write('old')
        self.server = FakeServer()
        self.units = FakeUnits(self.server)
        physical = FakePhysical(self.datadir)
        physical._client = self.server
        self.worker = restore.RestoreWorker(
            self.cfg.conf, 'db0', {'mariabackup': physical},
            local.LocalStorage(self.cfg.conf, path=os.path.join(top, 's')),
            self.units)
        self.bootstraps = []
        self.useFixture_patch()

    def useFixture_patch(self):
        def bootstrap():
            self.bootstraps.append(self.datadir)
            self.server.up = True
        patcher = mock.patch.object(self.worker.galera, 'bootstrap_server',
                                    side_effect=bootstrap)
        patcher.start()
        self.addCleanup(patcher.stop)
        patcher = mock.patch('time.sleep')
        patcher.start()
        self.addCleanup(patcher.stop)

    def params(self, role, **extra):
        return dict(extra, restore_id=3, backup_id=1, plan={
            'files': [], 'databases': [], 'units': [], 'galera': {
                'role': role, 'bootstrap': {'join': 'db1', 'recover': None}
                .get(role, 'db0'), 'members': ['db0', 'db1', 'db2'],
                'cluster_uuid': UUID}})

    def run_phases(self, params, *phases):
        for phase in phases:
            getattr(self.worker, phase)(params, lambda b, f: None)

    def test_a_joiner_gets_an_empty_datadir_and_waits_until_synced(self):
        params = self.params('join')
        self.run_phases(params, 'prepare', 'cluster_stop', 'replace',
                        'rejoin', 'finish')
        self.assertEqual([], os.listdir(self.datadir))
        parent = os.path.dirname(self.datadir)
        (orig,) = [d for d in os.listdir(parent) if d.startswith('data.orig')]
        self.assertEqual(['ibdata1'], os.listdir(os.path.join(parent, orig)))
        self.assertEqual([('stop', 'mariadb'), ('start', 'mariadb')],
                         self.units.calls)
        self.assertEqual([], self.bootstraps)

    def test_a_joiner_whose_transfer_failed_starts_again(self):
        self.flags(rejoin_attempts=3, group='galera')
        params = self.params('join')
        self.run_phases(params, 'prepare', 'cluster_stop', 'replace')
        self.units.calls = []
        self.units.fail_starts = 2      # two SSTs cut short
        steps = self.worker.rejoin(params, None)
        self.assertEqual([('start', 'mariadb'), ('stop', 'mariadb')] * 2 +
                         [('start', 'mariadb')], self.units.calls)
        self.assertEqual([('rejoin', 'SUCCEEDED')],
                         [(s['action'], s['status']) for s in steps])

    def test_a_joiner_failing_every_attempt_fails_the_phase(self):
        self.flags(rejoin_attempts=2, group='galera')
        params = self.params('join')
        self.run_phases(params, 'prepare', 'cluster_stop', 'replace')
        self.units.calls = []
        self.units.fail_starts = 2
        exc = self.assertRaises(restore.PhaseFailed, self.worker.rejoin,
                                params, None)
        self.assertIn('start of mariadb failed', exc.message)
        self.assertEqual(2, self.units.calls.count(('start', 'mariadb')))

    def test_a_recovery_for_a_logical_restore_loads_once_synced(self):
        params = self.params('recover', galera_bootstrap='db0')
        params['plan']['galera']['load_on'] = 'db0'
        loads = []
        self.worker._load_databases = (
            lambda params, progress, journal, steps: loads.append(
                (self.server.up, [s['action'] for s in steps])))
        self.run_phases(params, 'prepare')
        # (prepare verified it: not here, without a mysql driver)
        params['plan']['databases'] = [{'database': 'nova', 'artifact': {}}]
        self.run_phases(params, 'load_db')
        self.assertEqual([], loads)     # the cluster is down yet
        with open(os.path.join(self.datadir, 'grastate.dat'), 'w') as f:
            f.write('uuid: %s\nseqno: 9\nsafe_to_bootstrap: 0\n' % UUID)
        self.run_phases(params, 'cluster_stop', 'bootstrap', 'rejoin')
        self.assertEqual([(True, ['wait'])], loads)

    def test_a_joiner_that_dies_fails_at_once(self):
        params = self.params('join')
        self.run_phases(params, 'prepare', 'cluster_stop', 'replace')
        self.units.start = lambda unit: None      # started, then died
        self.server.up = False
        exc = self.assertRaises(restore.PhaseFailed, self.worker.rejoin,
                                params, None)
        self.assertIn('stopped while joining the cluster', exc.message)

    def test_undo_puts_the_old_data_back_then_rejoins_with_retries(self):
        params = self.params('join')
        self.run_phases(params, 'prepare', 'cluster_stop', 'replace',
                        'rejoin')
        self.units.calls = []
        self.run_phases(params, 'cluster_undo')
        self.assertEqual([('stop', 'mariadb')], self.units.calls)
        self.assertEqual(['ibdata1'], os.listdir(self.datadir))
        self.units.fail_starts = 2      # the old cluster is not up yet
        self.run_phases(params, 'rollback')
        # The stop is played again (it changes nothing now), then the
        # member starts until it joins.
        self.assertEqual([('stop', 'mariadb'),
                          ('stop', 'mariadb'), ('start', 'mariadb'),
                          ('stop', 'mariadb'), ('start', 'mariadb'),
                          ('stop', 'mariadb'), ('start', 'mariadb')],
                         self.units.calls)
        self.assertTrue(self.server.up)
        self.assertFalse(os.path.exists(self.worker._journal(params).path))

    def test_the_restored_member_bootstraps_at_the_backups_position(self):
        params = self.params('bootstrap')
        self.run_phases(params, 'prepare', 'cluster_stop')
        with open(os.path.join(self.datadir, 'xtrabackup_galera_info'),
                  'w') as f:
            f.write('%s:42 0\n' % UUID)
        self.run_phases(params, 'bootstrap', 'rejoin')
        state = galera_recovery.read_grastate(self.datadir)
        self.assertEqual({'uuid': UUID, 'seqno': '42',
                          'safe_to_bootstrap': '1'}, state)
        self.assertEqual([self.datadir], self.bootstraps)
        self.assertEqual([('stop', 'mariadb')], self.units.calls)

    def test_the_old_bootstrap_member_starts_the_old_cluster(self):
        params = self.params('bootstrap')
        self.run_phases(params, 'prepare', 'cluster_stop')
        with open(os.path.join(self.datadir, 'grastate.dat'), 'w') as f:
            f.write('uuid: %s\nseqno: 7\nsafe_to_bootstrap: 0\n' % UUID)
        self.run_phases(params, 'cluster_undo', 'rollback')
        self.assertEqual('1', galera_recovery.read_grastate(
            self.datadir)['safe_to_bootstrap'])
        self.assertEqual([self.datadir], self.bootstraps)

    def test_recovery_reports_the_position_and_only_the_chosen_starts(self):
        params = self.params('recover')
        self.server.up = False
        with open(os.path.join(self.datadir, 'grastate.dat'), 'w') as f:
            f.write('uuid: %s\nseqno: 9\nsafe_to_bootstrap: 0\n' % UUID)
        self.run_phases(params, 'prepare')
        steps = self.worker.cluster_stop(params, None)
        self.assertEqual('%s:9' % UUID, steps[-1]['target'])
        steps = self.worker.bootstrap(dict(params, galera_bootstrap='db2'),
                                      None)
        self.assertEqual('skip', steps[-1]['action'])
        self.assertEqual([], self.bootstraps)
        self.run_phases(dict(params, galera_bootstrap='db2'), 'rejoin')
        self.assertIn(('start', 'mariadb'), self.units.calls)
        exc = self.assertRaises(
            restore.PhaseFailed, self.worker.bootstrap,
            dict(params, galera_error='no position from db1'), None)
        self.assertIn('no position from db1', exc.message)

    def test_a_crashed_member_records_its_recovered_position(self):
        params = self.params('recover')
        self.server.up = False
        with open(os.path.join(self.datadir, 'grastate.dat'), 'w') as f:
            f.write('version: 2.1\nuuid: %s\nseqno: -1\n'
                    'safe_to_bootstrap: 0\n' % UUID)
        self.run_phases(params, 'prepare')
        found = galera_recovery.Position('db0', UUID, 12, False)
        with mock.patch.object(galera_recovery, 'position',
                               return_value=found) as position:
            steps = self.worker.cluster_stop(params, None)
        self.assertEqual(['mariadbd', '--user=mysql'],
                         position.call_args[0][2])
        self.assertEqual('%s:12' % UUID, steps[-1]['target'])
        # It starts at that position, not as a new history.
        self.assertEqual({'uuid': UUID, 'seqno': '12',
                          'safe_to_bootstrap': '0'},
                         galera_recovery.read_grastate(self.datadir))
