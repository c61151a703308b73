"""The agent's restore phases on a temp node tree, no broker or DB."""

import os
import threading

import fixtures

from osbackup.agent import restore
from osbackup.drivers import base as driver_base
from osbackup.drivers import nova
from osbackup import exception
from osbackup import states
from osbackup.storage import local
from osbackup.tests import base


class FakeUnits:
    def __init__(self, fail_start=()):
        self.calls = []
        self.running = set()
        self.fail_start = fail_start

    def stop(self, unit):
        self.calls.append(('stop', unit))
        self.running.discard(unit)

    def start(self, unit):
        self.calls.append(('start', unit))
        if unit in self.fail_start:
            raise exception.ServiceControlError('%s failed' % unit)
        self.running.add(unit)

    def is_active(self, unit):
        return unit in self.running

    def exists(self, unit):
        return True


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)


def read(path):
    with open(path) as f:
        return f.read()


def run_phases(worker, params, *phases) -> list:
    """Run restore phases on an agent's RestoreWorker; all their steps."""
    steps = []
    for phase in phases:
        steps += getattr(worker, phase)(params, lambda b, f: None)
    return steps


class RestoreWorkerTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.root = os.path.join(self.state_dir, 'node')
        self.flags(root_path=self.root, unit_check_timeout=2,
                   unit_check_settle=0, group='agent')
        self.flags(units=['nova-api'], group='nova')
        write(os.path.join(self.root, 'etc/nova/nova.conf'), 'good\n')
        write(os.path.join(self.root, 'var/lib/nova/state'), 'state\n')
        write(os.path.join(self.root, 'var/lib/nova/instances/i1/disk'),
              'disk-before\n')
        self.storage = local.LocalStorage(
            self.cfg.conf, path=os.path.join(self.state_dir, 'store'))
        self.driver = nova.NovaDriver(self.cfg.conf)
        ctx = driver_base.TaskContext('t', '1', 'h', 'nova', self.storage)
        (art,) = self.driver.backup(ctx)
        self.artifact = art.to_dict()
        self.units = FakeUnits()
        self.worker = restore.RestoreWorker(self.cfg.conf, 'h',
                                            {'nova': self.driver},
                                            self.storage, self.units)
        self.params = {'restore_id': 9, 'backup_id': 1, 'plan': {
            'files': [{'service': 'nova', 'artifact': self.artifact,
                       'paths': ['/' + p for p in
                                 self.artifact['meta']['paths']]}],
            'databases': [], 'units': ['nova-api']}}

    def run_phases(self, *phases):
        return run_phases(self.worker, self.params, *phases)

    def damage(self):
        write(os.path.join(self.root, 'etc/nova/nova.conf'), 'damaged\n')
        os.unlink(os.path.join(self.root, 'var/lib/nova/state'))
        write(os.path.join(self.root, 'var/lib/nova/instances/i1/disk'),
              'disk-after\n')

    def test_full_restore_keeps_excluded_instances_live(self):
        self.damage()
        self.run_phases('prepare', 'stop', 'replace', 'start', 'check',
                        'finish')
        self.assertEqual('good\n', read(os.path.join(
            self.root, 'etc/nova/nova.conf')))
        self.assertEqual('state\n', read(os.path.join(
            self.root, 'var/lib/nova/state')))
        # Instance disks were never in the backup: the live ones stay.
        self.assertEqual('disk-after\n', read(os.path.join(
            self.root, 'var/lib/nova/instances/i1/disk')))
        origs = [n for n in os.listdir(os.path.join(self.root, 'etc'))
                 if n.startswith('nova.orig-')]
        self.assertEqual(1, len(origs))
        self.assertEqual([('stop', 'nova-api'), ('start', 'nova-api')],
                         self.units.calls)
        self.assertEqual([], os.listdir(self.worker.directory))

    def test_units_stop_together(self):
        units = ['nova-api', 'nova-scheduler', 'nova-conductor']
        self.params['plan']['units'] = units
        # Each stop waits for the other two: stopped one after another,
        # the first would time out.
        barrier = threading.Barrier(len(units), timeout=10)
        stop = self.units.stop

        def together(unit):
            barrier.wait()
            stop(unit)
        self.units.stop = together
        steps = self.run_phases('prepare', 'stop')
        self.assertEqual([('stop', u, states.SUCCEEDED) for u in units],
                         [(s['action'], s['target'], s['status'])
                          for s in steps if s['action'] == 'stop'])

    def test_failed_stop_names_the_unit_and_rollback_restarts_all(self):
        units = ['nova-api', 'nova-scheduler', 'nova-conductor']
        self.params['plan']['units'] = units
        stop = self.units.stop

        def failing(unit):
            if unit == 'nova-scheduler':
                raise exception.ServiceControlError('timed out stopping')
            stop(unit)
        self.units.stop = failing
        self.run_phases('prepare')
        err = self.assertRaises(restore.PhaseFailed, self.run_phases, 'stop')
        self.assertIn('nova-scheduler: timed out stopping', err.message)
        self.assertEqual([states.SUCCEEDED, states.FAILED, states.SUCCEEDED],
                         [s['status'] for s in err.steps])
        self.worker.rollback(self.params, None)
        self.assertEqual(sorted(units), sorted(
            u for action, u in self.units.calls if action == 'start'))

    def test_staged_trees_are_synced_before_anything_is_swapped(self):
        synced = []
        self.useFixture(fixtures.MockPatch(
            'osbackup.durable.sync_filesystems',
            lambda paths: synced.append(sorted(paths))))
        steps = self.run_phases('prepare')
        journal = restore.RestoreJournal(self.worker.directory, 9)
        self.assertEqual([sorted(journal.data['staged'].values())], synced)
        self.assertEqual(('sync', '2 staged tree(s)'),
                         (steps[-1]['action'], steps[-1]['target']))

    def test_sync_error_fails_prepare_and_leaves_live_trees(self):
        self.useFixture(fixtures.MockPatch(
            'osbackup.durable.sync_filesystems',
            side_effect=OSError(5, 'Input/output error')))
        self.damage()
        err = self.assertRaises(restore.PhaseFailed, self.run_phases,
                                'prepare')
        self.assertIn('sync 2 staged tree(s) failed', err.message)
        self.assertEqual('damaged\n', read(os.path.join(
            self.root, 'etc/nova/nova.conf')))
        self.worker.rollback(self.params, None)
        self.assertEqual(['nova'], os.listdir(os.path.join(self.root,
                                                           'etc')))

    def test_rollback_after_replace_puts_everything_back(self):
        self.damage()
        self.run_phases('prepare', 'stop', 'replace')
        steps = self.worker.rollback(self.params, None)
        self.assertEqual('damaged\n', read(os.path.join(
            self.root, 'etc/nova/nova.conf')))
        self.assertFalse(os.path.exists(os.path.join(
            self.root, 'var/lib/nova/state')))
        self.assertEqual('disk-after\n', read(os.path.join(
            self.root, 'var/lib/nova/instances/i1/disk')))
        self.assertEqual([], [n for n in os.listdir(
            os.path.join(self.root, 'etc')) if n != 'nova'])
        self.assertIn(('start', 'nova-api'), self.units.calls)
        self.assertTrue(all(s['status'] == states.SUCCEEDED for s in steps))

    def test_crash_between_journal_and_rename_keeps_live_tree(self):
        """Undo must never delete a live tree that was not swapped yet."""
        self.damage()
        self.run_phases('prepare')
        journal = restore.RestoreJournal(self.worker.directory, 9)
        target = os.path.join(self.root, 'etc/nova')
        journal.data['replaced'][target] = target + '.orig-x'
        journal.save()
        # The agent died here; a new one recovers at start-up.
        self.worker.recover()
        self.assertEqual('damaged\n', read(os.path.join(
            self.root, 'etc/nova/nova.conf')))
        self.assertEqual(['nova'], os.listdir(os.path.join(self.root,
                                                           'etc')))

    def test_recover_after_crash_mid_replace(self):
        self.damage()
        self.run_phases('prepare', 'stop', 'replace')
        self.units.calls.clear()
        fresh = restore.RestoreWorker(self.cfg.conf, 'h',
                                      {'nova': self.driver}, self.storage,
                                      self.units)
        fresh.recover()
        self.assertEqual('damaged\n', read(os.path.join(
            self.root, 'etc/nova/nova.conf')))
        self.assertEqual('disk-after\n', read(os.path.join(
            self.root, 'var/lib/nova/instances/i1/disk')))
        self.assertIn(('start', 'nova-api'), self.units.calls)
        # The journal is gone; the record of the rollback stays.
        self.assertEqual(['9' + restore.RECORD_SUFFIX],
                         os.listdir(self.worker.directory))

    def test_foreign_paths_refused(self):
        self.params['plan']['files'][0]['paths'] = ['/etc/shadow-dir']
        err = self.assertRaises(restore.PhaseFailed, self.run_phases,
                                'prepare')
        self.assertIn('outside the nova driver', err.message)
        self.assertEqual(states.FAILED, err.steps[-1]['status'])

    def test_corrupt_artifact_refused_before_anything_changes(self):
        with open(self.artifact['location'], 'r+b') as f:
            f.seek(40)
            b = f.read(1)
            f.seek(40)
            f.write(bytes([b[0] ^ 1]))
        self.damage()
        self.assertRaises(restore.PhaseFailed, self.run_phases, 'prepare')
        self.worker.rollback(self.params, None)
        self.assertEqual('damaged\n', read(os.path.join(
            self.root, 'etc/nova/nova.conf')))
        self.assertEqual(['nova'], os.listdir(os.path.join(self.root,
                                                           'etc')))
        self.assertEqual([], self.units.calls)

    def test_unit_that_does_not_stay_up_fails_check(self):
        self.units.running.clear()
        self.params['plan']['units'] = ['nova-api']
        err = self.assertRaises(restore.PhaseFailed, self.run_phases,
                                'check')
        self.assertIn('did not stay active', err.message)

    # -- an agent that died mid-restore -------------------------------------

    def restart(self):
        """A new agent process on the same state directory."""
        self.units.calls.clear()
        return restore.RestoreWorker(self.cfg.conf, 'h',
                                     {'nova': self.driver}, self.storage,
                                     self.units)

    def test_rollback_asked_after_restart_reports_the_recovery(self):
        self.damage()
        self.run_phases('prepare', 'stop', 'replace')
        fresh = self.restart()
        fresh.recover()
        self.assertEqual('damaged\n', read(os.path.join(
            self.root, 'etc/nova/nova.conf')))
        # The conductor gave up on this agent and asks again now.
        steps = fresh.rollback(self.params, None)
        self.assertEqual(('recover', states.SUCCEEDED),
                         (steps[0]['action'], steps[0]['status']))
        actions = [(s['action'], s['target']) for s in steps]
        self.assertIn(('put_back', '/etc/nova'), actions)
        self.assertIn(('start', 'nova-api'), actions)
        # Nothing was undone twice.
        self.assertEqual(1, self.units.calls.count(('start', 'nova-api')))
        self.assertEqual(steps, fresh.rollback(self.params, None))

    def test_recovery_that_left_steps_undone_is_reported_failed(self):
        self.damage()
        self.run_phases('prepare', 'stop', 'replace')
        self.units.fail_start = ('nova-api',)
        fresh = self.restart()
        fresh.recover()
        err = self.assertRaises(restore.PhaseFailed, fresh.rollback,
                                self.params, None)
        self.assertIn(('start', states.FAILED),
                      [(s['action'], s['status']) for s in err.steps])

    def test_records_of_old_recoveries_are_forgotten(self):
        self.run_phases('prepare')
        fresh = self.restart()
        fresh.recover()
        self.assertIsNotNone(fresh._recovered(9))
        restore.RECORD_RETENTION = -1
        self.addCleanup(setattr, restore, 'RECORD_RETENTION', 7 * 86400)
        fresh.recover()
        self.assertIsNone(fresh._recovered(9))
        self.assertEqual([], os.listdir(self.worker.directory))

    def with_database(self, mysql):
        self.worker.drivers['mysql'] = mysql
        self.params['plan']['databases'] = [{
            'database': 'nova', 'owner': 'nova', 'artifact': {
                'id': 1, 'name': 'nova', 'kind': 'sql', 'location': '/x',
                'sha256': 'a' * 64, 'size': 1, 'meta': {}}}]

    def restore_dirs(self):
        host = os.path.join(self.storage.path, 'h')
        return sorted(n for n in os.listdir(host) if n.startswith('restore-')
                      ) if os.path.isdir(host) else []

    def test_failed_pre_restore_dump_leaves_no_directory(self):
        self.with_database(FakeMysql(abort=True))
        self.run_phases('prepare', 'stop')
        self.assertRaises(restore.PhaseFailed, self.run_phases, 'load_db')
        self.assertEqual(['restore-9'], self.restore_dirs())
        self.worker.rollback(self.params, None)
        self.assertEqual([], self.restore_dirs())

    def test_dump_cut_short_by_a_crash_leaves_no_directory(self):
        self.with_database(FakeMysql(abort=False))
        self.run_phases('prepare', 'stop')
        self.assertRaises(restore.PhaseFailed, self.run_phases, 'load_db')
        fresh = self.restart()
        fresh.drivers['mysql'] = self.worker.drivers['mysql']
        fresh.recover()
        self.assertEqual([], self.restore_dirs())

    # -- the step log: each change logged before it is made ---------------

    def test_the_log_lists_every_change_in_order(self):
        self.params['plan']['units'] = ['nova-api', 'nova-conductor']
        self.run_phases('prepare', 'stop', 'load_db', 'replace', 'start')
        journal = restore.RestoreJournal(self.worker.directory, 9)
        etc = os.path.join(self.root, 'etc/nova')
        lib = os.path.join(self.root, 'var/lib/nova')
        self.assertEqual(
            [{'step': 'stage', 'target': etc},
             {'step': 'stage', 'target': lib},
             {'step': 'stop', 'units': ['nova-api', 'nova-conductor']},
             {'step': 'replace', 'target': etc},
             {'step': 'replace', 'target': lib},
             {'step': 'start', 'unit': 'nova-api'},
             {'step': 'start', 'unit': 'nova-conductor'}],
            journal.data['log'])
        # A phase run again (a redelivered task) logs nothing twice.
        self.run_phases('stop', 'replace', 'start')
        self.assertEqual(7, len(restore.RestoreJournal(
            self.worker.directory, 9).data['log']))

    def test_rollback_is_the_log_played_backwards(self):
        self.params['plan']['units'] = ['nova-api', 'nova-conductor']
        self.damage()
        self.run_phases('prepare', 'stop', 'replace', 'start')
        self.units.calls.clear()
        steps = self.worker.rollback(self.params, None)
        self.assertEqual(
            [('stop', 'nova-conductor'), ('stop', 'nova-api'),
             ('carry_back', '/var/lib/nova/instances'),
             ('put_back', '/var/lib/nova'), ('put_back', '/etc/nova'),
             ('start', 'nova-api'), ('start', 'nova-conductor')],
            [(s['action'], s['target']) for s in steps])
        # Units start again in the plan's order, not backwards.
        self.assertEqual([('stop', 'nova-conductor'), ('stop', 'nova-api'),
                          ('start', 'nova-api'), ('start', 'nova-conductor')],
                         self.units.calls)
        self.assertEqual('damaged\n', read(os.path.join(
            self.root, 'etc/nova/nova.conf')))
        self.assertEqual('disk-after\n', read(os.path.join(
            self.root, 'var/lib/nova/instances/i1/disk')))
        self.assertEqual(['nova'], os.listdir(os.path.join(self.root,
                                                           'etc')))

    def test_a_journal_without_a_log_is_undone_as_before(self):
        """An agent upgraded mid-restore finds a journal of the old form."""
        self.damage()
        self.run_phases('prepare', 'stop', 'replace')
        journal = restore.RestoreJournal(self.worker.directory, 9)
        del journal.data['log']
        journal.save()
        self.units.calls.clear()
        steps = self.restart().rollback(self.params, None)
        self.assertEqual(['stop', 'carry_back', 'put_back', 'put_back',
                          'start'], [s['action'] for s in steps])
        self.assertEqual('damaged\n', read(os.path.join(
            self.root, 'etc/nova/nova.conf')))
        self.assertEqual('disk-after\n', read(os.path.join(
            self.root, 'var/lib/nova/instances/i1/disk')))


class FakeMysql:
    """A mysql driver whose pre-restore dump dies half-way."""

    def __init__(self, abort):
        self.abort = abort

    def list_databases(self):
        return ['nova']

    def verify(self, ctx, location, database, sha256):
        pass

    def check_schema(self, database, artifact, owner, force):
        pass

    def backup(self, ctx, databases):
        writer = ctx.storage.open_writer(ctx.key(databases[0], '.sql.zst'))
        writer.write(b'-- half a dump')
        if self.abort:
            writer.abort()
        raise exception.DumpFailed('mysqldump died')

    def load(self, ctx, location, database, sha256, verified=False):
        raise AssertionError('nothing was loaded')


class FakeCommandDriver(driver_base.ServiceDriver, driver_base.CommandRestore):
    """A server whose whole state is ``self.state``; loads are logged."""

    def __init__(self, conf, name, log, fail_load=False):
        super().__init__(conf)
        self.name = name
        self.state = 'live-%s' % name
        self.log = log
        self.fail_load = fail_load

    def is_present(self):
        return True

    def backup(self, ctx):
        writer = ctx.storage.open_writer(ctx.key(self.name, '.txt'))
        writer.write(self.state.encode())
        return [driver_base.Artifact(
            name=self.name, kind='command', location=writer.commit(),
            size=len(self.state), sha256='-', meta={'state': self.state})]

    def check_artifact(self, ctx, artifact, force):
        self.log.append(('check', self.name, force))
        if artifact['meta'].get('bad'):
            raise exception.ArtifactCorrupt('%s is bad' % artifact['name'])

    def save_current(self, ctx, artifact):
        (saved,) = self.backup(ctx)
        return saved

    def restore_artifact(self, ctx, artifact, force):
        self.log.append(('load', self.name, artifact['meta']['state']))
        if self.fail_load and artifact['meta']['state'].startswith('b'):
            raise exception.RestoreFailed('%s load failed' % self.name)
        self.state = artifact['meta']['state']


class StorageTestCase(base.TestCase):
    """A node root, a local storage and a log of the drivers' calls."""

    def setUp(self):
        super().setUp()
        self.flags(root_path=os.path.join(self.state_dir, 'node'),
                   group='agent')
        self.storage = local.LocalStorage(
            self.cfg.conf, path=os.path.join(self.state_dir, 'store'))
        self.log = []


class CommandRestoreTest(StorageTestCase):

    def worker(self, **fail):
        self.drivers = {n: FakeCommandDriver(self.cfg.conf, n, self.log,
                                             fail_load=fail.get(n, False))
                        for n in ('rabbitmq', 'ovn')}
        return restore.RestoreWorker(self.cfg.conf, 'h', self.drivers,
                                     self.storage, FakeUnits())

    @staticmethod
    def params(bad=False, force=False):
        def item(service, name):
            return {'service': service, 'force': force, 'artifact': {
                'name': name, 'location': '/x/%s' % name, 'sha256': '-',
                'meta': {'state': 'backup-%s' % service, 'bad': bad}}}
        return {'restore_id': 4, 'backup_id': 1, 'plan': {
            'files': [], 'databases': [], 'units': [],
            'commands': [item('rabbitmq', 'rabbitmq-definitions'),
                         item('ovn', 'ovn-nb')]}}

    def test_loads_in_order_and_finish_drops_the_saved_copies(self):
        worker = self.worker()
        params = self.params(force=True)
        steps = run_phases(worker, params, 'prepare', 'load_db')
        self.assertEqual(
            ['verify rabbitmq-definitions', 'verify ovn-nb',
             'save rabbitmq-definitions', 'load rabbitmq-definitions',
             'save ovn-nb', 'load ovn-nb'],
            ['%s %s' % (s['action'], s['target']) for s in steps])
        self.assertEqual([('check', 'rabbitmq', True), ('check', 'ovn', True)],
                         self.log[:2])
        self.assertEqual(['backup-rabbitmq', 'backup-ovn'],
                         [d.state for d in self.drivers.values()])
        # load_db run again (a redelivered task) loads nothing twice.
        run_phases(worker, params, 'load_db')
        self.assertEqual(4, len(self.log))
        saved = list(self.storage.list('h/restore-4'))
        self.assertEqual(2, len(saved))
        run_phases(worker, params, 'finish')
        self.assertEqual([], list(self.storage.list('h/restore-4')))

    def test_a_bad_artifact_fails_prepare_with_nothing_loaded(self):
        worker = self.worker()
        exc = self.assertRaises(restore.PhaseFailed, worker.prepare,
                                self.params(bad=True), lambda b, f: None)
        self.assertIn('rabbitmq-definitions is bad', exc.message)
        self.assertEqual(['live-rabbitmq', 'live-ovn'],
                         [d.state for d in self.drivers.values()])

    def test_rollback_loads_the_saved_copies_back_in_reverse(self):
        worker = self.worker(ovn=True)
        params = self.params()
        run_phases(worker, params, 'prepare')
        exc = self.assertRaises(restore.PhaseFailed, worker.load_db, params,
                                lambda b, f: None)
        self.assertIn('ovn load failed', exc.message)
        self.assertEqual('backup-rabbitmq', self.drivers['rabbitmq'].state)
        del self.log[:]
        steps = run_phases(worker, params, 'rollback')
        self.assertEqual([('reload', 'ovn-nb'),
                          ('reload', 'rabbitmq-definitions')],
                         [(s['action'], s['target']) for s in steps])
        self.assertEqual([('load', 'ovn', 'live-ovn'),
                          ('load', 'rabbitmq', 'live-rabbitmq')], self.log)
        self.assertEqual(['live-rabbitmq', 'live-ovn'],
                         [d.state for d in self.drivers.values()])
        self.assertEqual([], list(self.storage.list('h/restore-4')))

    def test_a_service_without_a_command_driver_is_one_clear_error(self):
        worker = restore.RestoreWorker(self.cfg.conf, 'h', {}, self.storage,
                                       FakeUnits())
        exc = self.assertRaises(restore.PhaseFailed, worker.prepare,
                                self.params(), lambda b, f: None)
        self.assertIn('No rabbitmq driver that loads command artifacts',
                      exc.message)


class FakeAccountsMysql:
    """A server whose accounts are a set; every call is logged."""

    def __init__(self, log, fail_load=None):
        self.accounts = {'nova@%', 'kept@h'}
        self.log = log
        self.fail_load = fail_load

    def list_databases(self):
        return []

    def check_accounts(self, ctx, location, sha256):
        self.log.append(('check', location))

    def list_accounts(self):
        return sorted(self.accounts)

    def backup_accounts(self, ctx):
        writer = ctx.storage.open_writer(ctx.key('accounts', '.users.sql'))
        writer.write(','.join(sorted(self.accounts)).encode())
        return driver_base.Artifact(
            name='accounts', kind='accounts', location=writer.commit(),
            size=1, sha256='-', meta={'accounts': sorted(self.accounts)})

    def load_accounts(self, ctx, location, sha256):
        self.log.append(('load', location))
        if location == self.fail_load:
            raise exception.RestoreFailed('Loading the accounts failed')
        if location.startswith('/backup/'):
            self.accounts |= {'nova@%', 'keystone@%'}
        else:
            with open(location) as f:
                self.accounts |= set(f.read().split(','))

    def drop_accounts(self, accounts):
        self.log.append(('drop', accounts))
        self.accounts -= set(accounts)


class AccountsRestoreTest(StorageTestCase):

    def setUp(self):
        super().setUp()
        self.params = {'restore_id': 5, 'backup_id': 1, 'plan': {
            'files': [], 'databases': [], 'units': [],
            'accounts': {'artifact': {
                'name': 'accounts', 'location': '/backup/accounts',
                'sha256': '-', 'meta': {}}}}}

    def worker(self, **kw):
        self.mysql = FakeAccountsMysql(self.log, **kw)
        return restore.RestoreWorker(self.cfg.conf, 'h',
                                     {'mysql': self.mysql}, self.storage,
                                     FakeUnits())

    def test_checked_then_saved_then_loaded(self):
        worker = self.worker()
        steps = run_phases(worker, self.params, 'prepare', 'load_db')
        self.assertEqual(['verify accounts', 'save accounts',
                          'load accounts'],
                         ['%s %s' % (s['action'], s['target'])
                          for s in steps])
        self.assertEqual([('check', '/backup/accounts'),
                          ('load', '/backup/accounts')], self.log)
        self.assertEqual({'nova@%', 'kept@h', 'keystone@%'},
                         self.mysql.accounts)
        # A redelivered load_db loads nothing twice.
        run_phases(worker, self.params, 'load_db')
        self.assertEqual(2, len(self.log))
        run_phases(worker, self.params, 'finish')
        self.assertEqual([], list(self.storage.list('h/restore-5')))

    def test_rollback_drops_the_accounts_it_made_and_loads_the_saved(self):
        worker = self.worker()
        run_phases(worker, self.params, 'prepare', 'load_db')
        del self.log[:]
        steps = run_phases(worker, self.params, 'rollback')
        self.assertEqual([('reload', 'accounts')],
                         [(s['action'], s['target']) for s in steps])
        self.assertEqual(('drop', ['keystone@%']), self.log[0])
        self.assertEqual('load', self.log[1][0])
        self.assertEqual({'nova@%', 'kept@h'}, self.mysql.accounts)
        self.assertEqual([], list(self.storage.list('h/restore-5')))

    def test_a_failed_load_is_rolled_back(self):
        worker = self.worker(fail_load='/backup/accounts')
        run_phases(worker, self.params, 'prepare')
        exc = self.assertRaises(restore.PhaseFailed, worker.load_db,
                                self.params, lambda b, f: None)
        self.assertIn('Loading the accounts failed', exc.message)
        run_phases(worker, self.params, 'rollback')
        self.assertEqual({'nova@%', 'kept@h'}, self.mysql.accounts)
