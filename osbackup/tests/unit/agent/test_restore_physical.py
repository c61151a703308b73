"""Physical (mariabackup) artifacts in restore plans and restore phases."""

import os

from osbackup.agent import restore
from osbackup.conductor import restore_plan
from osbackup.drivers import base as driver_base
from osbackup.drivers import mariabackup
from osbackup import states
from osbackup.storage import local
from osbackup.tests import base
from osbackup.tests.unit.agent import test_restore
from osbackup.tests.unit.drivers import test_mariabackup as fakes


def _art(host, service, name, kind, meta=None):
    return {'id': hash((host, service, name)) % 1000, 'host': host,
            'service': service, 'name': name, 'kind': kind,
            'location': '/s/%s/%s' % (host, name), 'sha256': 'a' * 64,
            'size': 1, 'status': 'available', 'meta': meta or {}}


BACKUP = {'id': 7, 'artifacts': [
    _art('db', 'nova', 'nova', 'files', {'paths': ['etc/nova']}),
    _art('db', 'mysql', 'nova', 'sql'),
    _art('db', 'mysql', 'keystone', 'sql'),
    _art('db', 'mariabackup', 'mariabackup', 'physical',
         {'datadir': '/var/lib/mysql/'}),
]}
AGENTS = {'db': {'info': {'units': {'nova': ['nova-api'],
                                    'mariabackup': ['mariadb']}}}}


class PhysicalPlanTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.flags(databases=['nova'], group='nova')

    def build(self, services):
        return restore_plan.build(self.cfg.conf, BACKUP, AGENTS, [],
                                  services)

    def test_not_restored_unless_asked(self):
        plan = self.build([])
        host = plan['hosts']['db']
        self.assertNotIn('physical', host)
        self.assertEqual(['keystone', 'nova'],
                         [d['database'] for d in host['databases']])
        self.assertNotIn('mariadb', host['units'])
        (skipped,) = plan['skipped']
        self.assertEqual('mariabackup', skipped['target'])
        self.assertIn('--service mariabackup', skipped['reason'])

    def test_asked_for_it_plans_swap_and_server_units(self):
        plan = self.build(['mariabackup'])
        host = plan['hosts']['db']
        (item,) = host['physical']
        self.assertEqual('mariabackup', item['service'])
        self.assertEqual('physical', item['artifact']['kind'])
        self.assertEqual([], host['databases'])
        self.assertEqual(['mariadb'], host['units'])
        self.assertTrue(restore_plan.has_work(host, 'replace'))
        self.assertFalse(restore_plan.has_work(host, 'load_db'))
        steps = [(s['phase'], s['action'], s['target'])
                 for s in restore_plan.steps(plan)]
        self.assertEqual([
            ('prepare', 'verify', 'mariabackup'),
            ('prepare', 'stage', '/var/lib/mysql'),
            ('stop', 'stop', 'mariadb'),
            ('replace', 'replace', '/var/lib/mysql'),
            ('start', 'start', 'mariadb'),
            ('check', 'check', 'mariadb')], steps)

    def test_logical_loads_are_skipped_beside_it(self):
        plan = self.build(['mariabackup', 'nova'])
        host = plan['hosts']['db']
        self.assertEqual([], host['databases'])
        self.assertEqual(['etc/nova'], [p.lstrip('/') for f in host['files']
                                        for p in f['paths']])
        self.assertEqual({'mariadb', 'nova-api'}, set(host['units']))
        (skipped,) = plan['skipped']
        self.assertEqual('nova', skipped['target'])
        self.assertIn('restores every database', skipped['reason'])


class PhysicalRestoreWorkerTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(fakes.FakeTools(self))
        self.root = os.path.join(self.state_dir, 'node')
        self.flags(root_path=self.root, unit_check_timeout=2,
                   unit_check_settle=0, group='agent')
        self.datadir = os.path.join(self.root, 'var/lib/mysql')
        test_restore.write(os.path.join(self.datadir, 'ibdata1'), 'live')
        self.storage = local.LocalStorage(
            self.cfg.conf, path=os.path.join(self.state_dir, 'store'))
        self.driver = mariabackup.MariaBackupDriver(self.cfg.conf)
        ctx = driver_base.TaskContext('t', '1', 'h', 'mariabackup',
                                      self.storage)
        (art,) = self.driver.backup(ctx)
        self.units = test_restore.FakeUnits()
        self.units.running.add('mariadb')
        self.worker = restore.RestoreWorker(
            self.cfg.conf, 'h', {'mariabackup': self.driver}, self.storage,
            self.units)
        self.params = {'restore_id': 3, 'backup_id': 1, 'plan': {
            'files': [], 'databases': [], 'units': ['mariadb'],
            'physical': [{'service': 'mariabackup',
                          'artifact': art.to_dict()}]}}

    def run_phases(self, *phases):
        return test_restore.run_phases(self.worker, self.params, *phases)

    def siblings(self):
        return sorted(os.listdir(os.path.dirname(self.datadir)))

    def test_stage_then_swap(self):
        steps = self.run_phases('prepare')
        self.assertEqual([('verify', 'mariabackup'),
                          ('stage', '/var/lib/mysql'),
                          ('sync', '1 staged tree(s)')],
                         [(s['action'], s['target']) for s in steps])
        # Staged beside the live directory, which is untouched.
        self.assertEqual('live', test_restore.read(
            os.path.join(self.datadir, 'ibdata1')))
        self.assertEqual(['.mysql.osbackup-restore-3', 'mysql'],
                         self.siblings())
        self.run_phases('stop', 'replace', 'start', 'check', 'finish')
        self.assertEqual('system tablespace', test_restore.read(
            os.path.join(self.datadir, 'ibdata1')))
        (orig,) = [n for n in self.siblings() if n.startswith('mysql.orig-')]
        self.assertEqual('live', test_restore.read(
            os.path.join(os.path.dirname(self.datadir), orig, 'ibdata1')))
        self.assertEqual([('stop', 'mariadb'), ('start', 'mariadb')],
                         self.units.calls)

    def test_rollback_puts_the_old_datadir_back(self):
        self.run_phases('prepare', 'stop', 'replace')
        self.run_phases('rollback')
        self.assertEqual('live', test_restore.read(
            os.path.join(self.datadir, 'ibdata1')))
        self.assertEqual(['mysql'], self.siblings())
        self.assertIn('mariadb', self.units.running)

    def test_corrupt_artifact_stops_in_prepare(self):
        self.params['plan']['physical'][0]['artifact']['sha256'] = 'f' * 64
        exc = self.assertRaises(restore.PhaseFailed, self.run_phases,
                                'prepare')
        self.assertIn('sha256', exc.message)
        self.assertEqual(states.FAILED, exc.steps[-1]['status'])
        self.run_phases('rollback')
        self.assertEqual(['mysql'], self.siblings())

    def test_refused_without_a_server_unit(self):
        self.params['plan']['units'] = []
        exc = self.assertRaises(restore.PhaseFailed, self.run_phases,
                                'prepare')
        self.assertIn('must stop the server first', exc.message)
        self.assertEqual(['mysql'], self.siblings())

    def test_replace_refuses_a_running_server(self):
        self.run_phases('prepare', 'stop')
        # The unit said stopped, but a server still holds the files.
        release = fakes.hold_lock(self, os.path.join(self.datadir,
                                                     'ibdata1'))
        exc = self.assertRaises(restore.PhaseFailed, self.run_phases,
                                'replace')
        self.assertIn('A server is running', exc.message)
        self.assertEqual('live', test_restore.read(
            os.path.join(self.datadir, 'ibdata1')))
        release()
        self.run_phases('rollback')
        self.assertEqual(['mysql'], self.siblings())
