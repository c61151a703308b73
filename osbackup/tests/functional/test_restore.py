"""Restore end to end on a real fleet, with stand-in daemons as units.

Back up, damage the node trees and the databases, restore, and check the
result byte for byte; then the failure cases: a corrupt artifact, a
database load that fails half-way, a crafted archive escaping its target,
and a service that does not start on the restored files. Each must leave
the nodes as they were before the restore, with the units running.
"""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time


from osbackup.tests.functional import fleet as fleet_mod
from osbackup.tests.functional import test_backup

NOVA_TREES = ('etc/nova', 'var/lib/nova', 'var/log/nova')
CTL_UNITS = {'nova': ['nova-api', 'nova-conductor'],
             'keystone': ['keystone-api']}
CMP_UNITS = {'nova': ['nova-compute']}


def snapshot(fleet, role, name):
    """Copy a node's tree aside, keeping modes, owners and mtimes."""
    dest = os.path.join(fleet.dir, 'snap-%s-%s' % (role, name))
    shutil.rmtree(dest, ignore_errors=True)
    subprocess.run(['cp', '-a', fleet.node_root(role), dest], check=True)
    return dest


def origs(fleet, role):
    found = []
    for top in ('etc', 'var/lib', 'var/log'):
        path = os.path.join(fleet.node_root(role), top)
        found += [n for n in os.listdir(path) if '.orig-' in n]
    return found


class RestoreTest(fleet_mod.RestoreCommand, fleet_mod.FleetTestCase):

    @classmethod
    def build_fleet(cls, fleet):
        fleet_mod.make_controller_tree(fleet.node_root('ctl'))
        fleet_mod.make_compute_tree(fleet.node_root('cmp'))
        cls.nova_db = fleet.create_database(
            'nova', {'instances': 400, 'services': 20})
        cls.keystone_db = fleet.create_database('keystone',
                                                {'project': 30})
        cls.fail_flag = os.path.join(fleet.dir, 'fail-load.flag')
        wrapper = os.path.join(os.path.dirname(fleet_mod.__file__),
                               'mysql_wrapper.py')
        fleet.start_conductor(sections={
            'nova': {'databases': cls.nova_db},
            'keystone': {'databases': cls.keystone_db}})
        ctl = fleet.standin_sections('ctl', CTL_UNITS)
        ctl['mysql'] = {'databases': '%s,%s' % (cls.nova_db,
                                                cls.keystone_db),
                        'mysql_path': _wrapper_exe(fleet, wrapper)}
        ctl['agent'] = {'drivers': 'mysql,nova,keystone'}
        fleet.start_agent('ctl', ctl, env={
            'OSBACKUP_FAIL_LOAD_FLAG': cls.fail_flag})
        cmp = fleet.standin_sections('cmp', CMP_UNITS)
        cmp['agent'] = {'drivers': 'nova'}
        fleet.start_agent('cmp', cmp)
        for role, units in (('ctl', CTL_UNITS), ('cmp', CMP_UNITS)):
            for names in units.values():
                for unit in names:
                    fleet.unit(role, 'start', unit)
        fleet.wait_for_agents([fleet.host('ctl'), fleet.host('cmp')])

    def setUp(self):
        super().setUp()
        try:
            os.unlink(self.fail_flag)
        except FileNotFoundError:
            pass

    # -- helpers -------------------------------------------------------

    def backup_nova(self):
        backup, proc = self.fleet.manage_json(
            'backup', 'create', '--service', 'nova', '--service', 'mysql',
            '--wait')
        self.assertEqual('SUCCEEDED', backup['status'], proc.stderr)
        return backup

    def artifact(self, backup, role, name):
        host = self.fleet.host(role)
        (art,) = [a for a in backup['artifacts']
                  if a['host'] == host and a['name'] == name]
        return art

    def assert_units_running(self):
        for role, units in (('ctl', CTL_UNITS), ('cmp', CMP_UNITS)):
            for names in units.values():
                for unit in names:
                    self.assertEqual(0, self.fleet.unit(role, 'status', unit),
                                     '%s on %s is not running' % (unit, role))

    def assert_trees_equal(self, role, snap):
        for top in NOVA_TREES:
            src = os.path.join(snap, top)
            dst = os.path.join(self.fleet.node_root(role), top)
            if os.path.exists(src):
                test_backup.assert_same_tree(self, src, dst)
                test_backup.assert_same_tree(self, dst, src)

    # -- tests ---------------------------------------------------------

    def test_restore_brings_back_files_and_databases(self):
        fleet = self.fleet
        backup = self.backup_nova()
        snaps = {r: snapshot(fleet, r, 'good') for r in ('ctl', 'cmp')}
        sums = fleet.checksums(self.nova_db)
        ctl = fleet.node_root('ctl')
        # Damage: a dropped database, deleted, edited and new files.
        fleet_mod.sql('DROP DATABASE %s' % self.nova_db)
        os.unlink(os.path.join(ctl, 'etc/nova/api-paste.ini'))
        with open(os.path.join(ctl, 'etc/nova/nova.conf'), 'a') as f:
            f.write('damaged = true\n')
        os.unlink(os.path.join(ctl, 'var/lib/nova/state'))
        fleet_mod.write_file(os.path.join(ctl, 'var/lib/nova/junk'), 'x')
        os.chmod(os.path.join(ctl, 'etc/nova/nova.conf'), 0o666)
        os.unlink(os.path.join(fleet.node_root('cmp'), 'etc/nova/nova.conf'))
        damaged_conf = _digest(os.path.join(ctl, 'etc/nova/nova.conf'))
        events_before = len(fleet.unit_events('ctl'))

        dry, _ = fleet.manage_json('restore', 'create', str(backup['id']),
                                   '--service', 'nova', '--dry-run')
        self.assertTrue(dry['dry_run'])
        self.assertIn(('load', self.nova_db),
                      [(s['action'], s['target']) for s in dry['steps']])
        self.assertFalse(os.path.exists(
            os.path.join(ctl, 'etc/nova/api-paste.ini')))

        restore = self.restore(backup['id'], '--service', 'nova')
        self.assertEqual(backup['id'], restore['backup_id'])
        for role in ('ctl', 'cmp'):
            self.assert_trees_equal(role, snaps[role])
        self.assertEqual(sums, fleet.checksums(self.nova_db))
        # The replaced trees are kept beside the restored ones.
        self.assertEqual(['nova.orig-'] * 3,
                         [n[:10] for n in origs(fleet, 'cmp')])
        actions = [(s['host'], s['action'], s['target'], s['status'])
                   for s in restore['steps']]
        self.assertIn((fleet.host('ctl'), 'replace', '/etc/nova',
                       'SUCCEEDED'), actions)
        self.assertIn((fleet.host('ctl'), 'load', self.nova_db,
                       'SUCCEEDED'), actions)
        # Units stopped on the damaged files, started on the restored ones.
        events = fleet.unit_events('ctl')[events_before:]
        good_conf = _digest(os.path.join(snaps['ctl'], 'etc/nova/nova.conf'))
        for unit in CTL_UNITS['nova']:
            mine = [e for e in events if e[2] == unit]
            self.assertEqual(['stop', 'start'], [e[1] for e in mine])
            self.assertEqual(damaged_conf, mine[0][3])
            self.assertEqual(good_conf, mine[1][3])
        self.assertNotIn('keystone-api', [e[2] for e in events])
        self.assert_units_running()
        shown, _ = fleet.manage_json('restore', 'show', str(restore['id']))
        self.assertEqual(restore['steps'], shown['steps'])
        listed, _ = fleet.manage_json('restore', 'list')
        self.assertEqual(restore['id'], listed[0]['id'])

    def test_corrupt_artifact_is_refused_with_nothing_changed(self):
        fleet = self.fleet
        backup = self.backup_nova()
        location = self.artifact(backup, 'ctl', 'nova')['location']
        # Flipped back afterwards: later backups are incremental on it.
        self.addCleanup(_flip_middle_byte, location)
        _flip_middle_byte(location)
        with open(os.path.join(fleet.node_root('ctl'), 'etc/nova/nova.conf'),
                  'a') as f:
            f.write('changed after the backup\n')
        before = snapshot(fleet, 'ctl', 'corrupt')
        events_before = len(fleet.unit_events('ctl'))
        origs_before = origs(fleet, 'ctl')
        restore = self.restore(backup['id'], '--service', 'nova',
                               expect='FAILED')
        self.assertIn('prepare failed', restore['error'])
        failed = [s for s in restore['steps'] if s['status'] == 'FAILED']
        self.assertTrue(failed)
        self.assertRegex(failed[0]['error'], 'checksum|corrupt|sha256')
        self.assert_trees_equal('ctl', before)
        self.assertEqual(origs_before, origs(fleet, 'ctl'))
        self.assertEqual(events_before, len(fleet.unit_events('ctl')))
        self.assert_units_running()

    def test_failed_database_load_rolls_everything_back(self):
        fleet = self.fleet
        backup = self.backup_nova()
        fleet_mod.sql("UPDATE instances SET name = 'changed'", self.nova_db)
        ctl = fleet.node_root('ctl')
        with open(os.path.join(ctl, 'etc/nova/nova.conf'), 'a') as f:
            f.write('changed after the backup\n')
        before = snapshot(fleet, 'ctl', 'dbfail')
        sums = fleet.checksums(self.nova_db)
        origs_before = origs(fleet, 'ctl')
        open(self.fail_flag, 'w').close()
        restore = self.restore(backup['id'], '--service', 'nova',
                               expect='FAILED')
        self.assertIn('load_db failed', restore['error'])
        self.assertIn('Lost connection', restore['error'])
        self.assertEqual(sums, fleet.checksums(self.nova_db))
        self.assert_trees_equal('ctl', before)
        self.assertEqual(origs_before, origs(fleet, 'ctl'))
        actions = [(s['action'], s['status']) for s in restore['steps']]
        self.assertIn(('reload', 'SUCCEEDED'), actions)
        self.assertIn(('start', 'SUCCEEDED'), actions)
        self.assert_units_running()
        self.assertEqual([], [n for n in os.listdir(os.path.join(ctl, 'etc'))
                              if 'osbackup-restore' in n])

    def test_crafted_archive_escaping_its_target_is_refused(self):
        fleet = self.fleet
        backup = self.backup_nova()
        art = self.artifact(backup, 'cmp', 'nova')
        victim = os.path.join(fleet.dir, 'victim')
        for member in ('../../../victim', 'etc/nova/link'):
            info = tarfile.TarInfo(member)
            if member.endswith('link'):
                # The link alone would be restored as a link; a file
                # below it could only be written through it.
                info.type = tarfile.SYMTYPE
                info.linkname = '../../../..'
                data = fleet_mod.hostile_archive(
                    info, then=[(tarfile.TarInfo('etc/nova/link/victim'),
                                 b'owned\n')])
            else:
                data = fleet_mod.hostile_archive(info, b'owned\n')
            fleet.plant(art, data)
            events_before = len(fleet.unit_events('cmp'))
            restore = self.restore(backup['id'], '--service', 'nova',
                                   '--host', fleet.host('cmp'),
                                   expect='FAILED')
            self.assertIn('prepare failed', restore['error'])
            self.assertRegex(restore['error'], 'unsafe|outside|leaves|\\.\\.')
            self.assertFalse(os.path.exists(victim))
            self.assertEqual(events_before, len(fleet.unit_events('cmp')))
        self.assert_units_running()

    def test_service_failing_to_start_is_rolled_back(self):
        fleet = self.fleet
        ctl = fleet.node_root('ctl')
        conf = os.path.join(ctl, 'etc/nova/nova.conf')
        with open(conf) as f:
            good = f.read()
        with open(conf, 'w') as f:
            f.write(good + 'BROKEN = yes\n')
        try:
            backup, _ = fleet.manage_json(
                'backup', 'create', '--service', 'nova', '--host',
                fleet.host('ctl'), '--wait')
        finally:
            with open(conf, 'w') as f:
                f.write(good)
        before = snapshot(fleet, 'ctl', 'broken')
        restore = self.restore(backup['id'], '--service', 'nova',
                               '--host', fleet.host('ctl'),
                               expect='FAILED')
        self.assertIn('check failed', restore['error'])
        self.assert_trees_equal('ctl', before)
        actions = [(s['action'], s['target']) for s in restore['steps']]
        self.assertIn(('put_back', '/etc/nova'), actions)
        self.assert_units_running()


def _flip_middle_byte(path):
    with open(path, 'r+b') as f:
        f.seek(os.path.getsize(path) // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xff]))


def _digest(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def _wrapper_exe(fleet, wrapper):
    """An executable that runs the wrapper with this interpreter."""
    path = os.path.join(fleet.dir, 'mysql-wrapper')
    with open(path, 'w') as f:
        f.write('#!/bin/sh\nexec %s %s "$@"\n' % (sys.executable, wrapper))
    os.chmod(path, 0o755)
    return path


class InterruptedRestoreTest(fleet_mod.FleetTestCase):
    """A conductor or an agent killed in the middle of a restore.

    One compute node; short task timeouts so that the dead are given up
    on within seconds.
    """

    UNITS = {'nova': ['nova-compute']}

    @classmethod
    def build_fleet(cls, fleet):
        fleet_mod.make_compute_tree(fleet.node_root('cmp'))
        cls.pause_flag = os.path.join(fleet.dir, 'pause-conductor.flag')
        cls.hang_flag = os.path.join(fleet.dir, 'hang-start.flag')
        cls.hang_pid = cls.hang_flag + '.pid'
        cls.conductor_conf = fleet.write_conf(
            'conductor', fleet.host('conductor'), {'conductor': {
                'task_silence_timeout': '6', 'task_start_timeout': '6'}})
        fleet.manage('db', 'sync', conf=cls.conductor_conf)
        cls.start_conductor(fleet)
        sections = fleet.standin_sections('cmp', cls.UNITS)
        # The unit's start hangs while the flag exists: the agent is then
        # killed with the directories swapped and the unit stopped.
        hanging = os.path.join(fleet.dir, 'hanging-start')
        with open(hanging, 'w') as f:
            f.write('#!/bin/sh\nif [ -e %s ]; then echo $$ > %s; '
                    'exec sleep 120; fi\nexec %s\n'
                    % (cls.hang_flag, cls.hang_pid,
                       sections['service_command']['start'].replace(
                           '{unit}', '"$1"')))
        os.chmod(hanging, 0o755)
        sections['service_command']['start'] = hanging + ' {unit}'
        sections['agent'] = {'drivers': 'nova'}
        cls.agent_sections = sections
        fleet.start_agent('cmp', sections)
        fleet.unit('cmp', 'start', 'nova-compute')
        fleet.wait_for_agents([fleet.host('cmp')])

    @classmethod
    def start_conductor(cls, fleet):
        fleet.start('conductor', 'osbackup.tests.functional.'
                    'pausing_conductor', cls.conductor_conf,
                    env={'OSBACKUP_TEST_PAUSE_FLAG': cls.pause_flag})

    # -- helpers -------------------------------------------------------

    def backup_and_damage(self, name):
        backup, proc = self.fleet.manage_json(
            'backup', 'create', '--service', 'nova', '--wait')
        self.assertEqual('SUCCEEDED', backup['status'], proc.stderr)
        conf = os.path.join(self.fleet.node_root('cmp'), 'etc/nova/nova.conf')
        with open(conf, 'a') as f:
            f.write('# changed after backup %s\n' % backup['id'])
        return backup, snapshot(self.fleet, 'cmp', name)

    def start_restore(self, backup):
        restore, proc = self.fleet.manage_json(
            'restore', 'create', str(backup['id']), '--service', 'nova')
        self.assertEqual('RUNNING', restore['status'], proc.stderr)
        return restore['id']

    def show(self, restore_id):
        return self.fleet.manage_json('restore', 'show', str(restore_id))[0]

    def wait_for(self, what, check, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.5)
        raise AssertionError('%s within %d s; logs:\n%s' % (
            what, timeout, '\n'.join(self.fleet.log(n)[-4000:]
                                     for n in sorted(self.fleet.procs))))

    def wait_ended(self, restore_id):
        return self.wait_for('restore %s ended' % restore_id, lambda: (
            lambda r: r if r['status'] != 'RUNNING' else None)(
                self.show(restore_id)))

    def assert_unit_running(self):
        self.assertEqual(0, self.fleet.unit('cmp', 'status', 'nova-compute'))

    def assert_tree_is(self, snap):
        for top in NOVA_TREES:
            src = os.path.join(snap, top)
            dst = os.path.join(self.fleet.node_root('cmp'), top)
            if os.path.exists(src):
                test_backup.assert_same_tree(self, src, dst)
                test_backup.assert_same_tree(self, dst, src)
        self.assertEqual([], origs(self.fleet, 'cmp'))

    def rollback_of(self, restore):
        return {h['host']: h['rollback'] for h in restore['host_status']}

    # -- tests ---------------------------------------------------------

    def test_conductor_killed_between_phases_skips_none(self):
        fleet = self.fleet
        backup, before = self.backup_and_damage('conductor-killed')
        stops = len([e for e in fleet.unit_events('cmp') if e[1] == 'stop'])
        open(self.pause_flag, 'w').close()
        self.addCleanup(lambda: os.path.exists(self.pause_flag) and
                        os.unlink(self.pause_flag))
        restore_id = self.start_restore(backup)
        self.wait_for('the conductor reaching the stop phase',
                      lambda: os.path.exists(self.pause_flag + '.reached'))
        fleet.stop('conductor', signal.SIGKILL)
        os.unlink(self.pause_flag)
        self.start_conductor(fleet)
        restore = self.wait_ended(restore_id)
        # The stop tasks never left the killed conductor: the restore
        # fails and rolls back; nothing is swapped under a running unit.
        self.assertEqual('FAILED', restore['status'], restore)
        self.assertIn('stop failed', restore['error'])
        phases = {s['phase'] for s in restore['steps']}
        self.assertNotIn('replace', phases, restore['steps'])
        self.assertIn(('stop', fleet.host('cmp'), 'TIMED_OUT'),
                      [(s['phase'], s['host'], s['status'])
                       for s in restore['steps']])
        self.assertEqual({fleet.host('cmp'): 'done'},
                         self.rollback_of(restore))
        self.assertEqual(stops, len([e for e in fleet.unit_events('cmp')
                                     if e[1] == 'stop']))
        self.assert_tree_is(before)
        self.assert_unit_running()

    def test_agent_killed_mid_restore_is_reported_then_recorded(self):
        fleet = self.fleet
        host = fleet.host('cmp')
        backup, before = self.backup_and_damage('agent-killed')
        open(self.hang_flag, 'w').close()
        restore_id = self.start_restore(backup)
        self.wait_for('the start phase hanging',
                      lambda: os.path.exists(self.hang_pid))
        fleet.stop('cmp', signal.SIGKILL)
        with open(self.hang_pid) as f:
            os.kill(int(f.read()), signal.SIGKILL)
        os.unlink(self.hang_pid)
        os.unlink(self.hang_flag)
        restore = self.wait_ended(restore_id)
        self.assertEqual('FAILED', restore['status'])
        self.assertEqual({host: 'timed_out'}, self.rollback_of(restore))
        self.assertEqual([host], restore['needs_attention'])
        table = fleet.manage('restore', 'show', str(restore_id)).stdout
        self.assertIn('was NOT rolled back on 1 host(s)', table)
        self.assertIn('%s (rollback timed_out)' % host, table)
        # The host is half-restored until its agent comes back.
        self.assertNotEqual([], origs(fleet, 'cmp'))

        fleet.start_agent('cmp', self.agent_sections)
        restore = self.wait_for('the rollback recorded', lambda: (
            lambda r: r if self.rollback_of(r)[host] == 'done' else None)(
                self.show(restore_id)))
        self.assertEqual('FAILED', restore['status'])
        self.assertEqual([], restore['needs_attention'])
        steps = [(s['phase'], s['action'], s['status'])
                 for s in restore['steps'] if s['host'] == host]
        self.assertIn(('rollback', 'recover', 'SUCCEEDED'), steps)
        self.assertIn(('rollback', 'put_back', 'SUCCEEDED'), steps)
        self.assert_tree_is(before)
        self.assert_unit_running()
        self.assertEqual([], [n for n in os.listdir(
            os.path.join(fleet.storage, host)) if n.startswith('restore-')])
