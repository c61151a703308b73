"""The fault suite: real broker, database and processes, things going wrong.

Every test ends by checking that the catalogue says exactly what happened,
that nothing good was lost, that no partial artifact is recorded as good
and that a clear error reached the operator.

A real RabbitMQ restart (``rabbitmqctl stop_app``) is deliberately not
here: it would break every other user of the shared broker (other test
runs, benchmarks). ``BrokerConnectionTest`` closes the connections of
the fleet's own vhost instead, which is what agents and conductors see
of a broker restart.
"""

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from unittest import mock
import uuid

import testtools
import zstandard

from osbackup import keyfile
from osbackup import records as storage_records
from osbackup import signing
from osbackup.tests.functional import broker
from osbackup.tests.functional import fleet as fleet_mod
from osbackup.tests.functional import test_restore

HERE = os.path.dirname(os.path.abspath(__file__))


# -- helpers ------------------------------------------------------------------

def wait_for(what, predicate, timeout=90, interval=0.3):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('timed out after %d s waiting for %s'
                                 % (timeout, what))
        time.sleep(interval)


def sha256_of(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def stored_files(top, records=True):
    """Every file under a local target; ``records=False``: artifacts only."""
    return sorted(os.path.join(d, f) for d, _dirs, files in os.walk(top)
                  for f in files
                  if records or not os.path.relpath(
                      os.path.join(d, f), top).startswith(
                          storage_records.PREFIX))


def available(backup):
    """The available artifacts of a backup, but the server's accounts."""
    return [a for a in backup['artifacts'] if a['status'] == 'available'
            and a['kind'] != 'accounts']


def dump_wrapper(fleet):
    """An executable running mysqldump_wrapper.py with this interpreter."""
    return fleet.python_exe('mysqldump-wrapper',
                            os.path.join(HERE, 'mysqldump_wrapper.py'))


def decompress(path):
    with open(path, 'rb') as f:
        return zstandard.ZstdDecompressor().decompressobj().decompress(
            f.read())


def tar_members(path):
    with tarfile.open(fileobj=io.BytesIO(decompress(path))) as tar:
        return {m.name: m for m in tar.getmembers()}


class FaultTestMixin(fleet_mod.RestoreCommand):
    """Assertions and CLI shortcuts shared by the fault tests."""

    fleet = None

    def backup(self, *argv, expect='SUCCEEDED'):
        backup, proc = self.fleet.manage_json('backup', 'create', '--wait',
                                              *argv, check=False)
        self.assertEqual(expect, backup['status'], '%s\n%s'
                         % (proc.stderr, backup))
        self.assertEqual(0 if expect == 'SUCCEEDED' else 1, proc.returncode)
        return backup

    def show(self, backup_id):
        return self.fleet.manage_json('backup', 'show', str(backup_id))[0]

    def wait_backup(self, backup_id, timeout=120):
        return wait_for('backup %s to end' % backup_id, lambda: (
            lambda b: b if b['status'] != 'RUNNING' else None)(
                self.show(backup_id)), timeout)

    def held_dump_fleet(self):
        """A fleet whose one agent's mysqldump waits until released.

        The dump holds while ``mode_file`` exists; returns (fleet, host,
        database, mode_file).
        """
        self.fleet = fleet = fleet_mod.Fleet()
        self.addCleanup(fleet.cleanup)
        db = fleet.create_database('data', {'items': 100})
        mode_file = os.path.join(fleet.dir, 'dump-mode')
        with open(mode_file, 'w') as f:
            f.write('hold')
        host = fleet.host('ctl')
        fleet.start_conductor()
        fleet.start_agent('ctl', {
            'agent': {'drivers': 'mysql'},
            'mysql': {'databases': db, 'mysqldump_path': dump_wrapper(fleet)}},
            env={'OSBACKUP_DUMP_MODE_FILE': mode_file})
        fleet.wait_for_agents([host])
        return fleet, host, db, mode_file

    def assert_intact(self, artifact):
        """A good artifact of an earlier backup is still there, unchanged."""
        self.assertTrue(os.path.isfile(artifact['location']))
        if not artifact['location'].endswith('.enc'):
            self.assertEqual(artifact['sha256'],
                             sha256_of(artifact['location']))

    def assert_nothing_stored(self, backup):
        self.assertEqual([], available(backup))
        for task in backup['tasks']:
            top = os.path.join(self.fleet.storage, task['host'],
                               str(backup['id']))
            self.assertEqual([], stored_files(top))

    def security_events(self, name):
        return [line for line in self.fleet.log(name).splitlines()
                if 'SECURITY: rejected RPC message' in line]

    # The nova trees of a node are as in the snapshot, both ways.
    assert_same_tree = test_restore.RestoreTest.assert_trees_equal


# -- one fleet, faults that need no process restarts -------------------------

class SharedFleetFaultTest(FaultTestMixin, fleet_mod.FleetTestCase):
    """A controller (mysql, nova, keystone) and an encrypting compute node.

    The controller's mysql driver logs in with a password (to look for it
    where it must not be) through a mysqldump wrapper that fails or waits
    on demand.
    """

    @classmethod
    def build_fleet(cls, fleet):
        fleet_mod.make_controller_tree(fleet.node_root('ctl'))
        fleet_mod.make_compute_tree(fleet.node_root('cmp'))
        cls.db = fleet.create_database('data', {'items': 300})
        cls.db_user = 'ft%s' % fleet.id
        cls.db_password = 'Pw-%s' % uuid.uuid4().hex
        for host in ('localhost', '127.0.0.1'):
            fleet_mod.sql("CREATE USER '%s'@'%s' IDENTIFIED BY '%s'"
                          % (cls.db_user, host, cls.db_password))
            fleet_mod.sql("GRANT ALL ON *.* TO '%s'@'%s'"
                          % (cls.db_user, host))
        cls.mode_file = os.path.join(fleet.dir, 'dump-mode')
        fleet.start_conductor()
        units = {'nova': ['nova-api'], 'keystone': ['keystone-api']}
        ctl = fleet.standin_sections('ctl', units)
        ctl['agent'] = {'drivers': 'mysql,nova,keystone'}
        ctl['mysql'] = {'databases': cls.db, 'host': '127.0.0.1',
                        'user': cls.db_user,
                        'password': cls.db_password,
                        'mysqldump_path': dump_wrapper(fleet)}
        fleet.start_agent('ctl', ctl, env={
            'OSBACKUP_DUMP_MODE_FILE': cls.mode_file})
        cls.storage_key = os.path.join(fleet.dir, 'storage.key')
        fleet_mod.write_file(cls.storage_key, os.urandom(32).hex(),
                             0o600)
        cmp = fleet.standin_sections('cmp', {'nova': ['nova-compute']})
        cmp['agent'] = {'drivers': 'nova'}
        cmp['storage'] = {'encryption_key_file': cls.storage_key}
        fleet.start_agent('cmp', cmp)
        for role, names in (('ctl', ['nova-api', 'keystone-api']),
                            ('cmp', ['nova-compute'])):
            for unit in names:
                fleet.unit(role, 'start', unit)
        cls.ctl, cls.cmp = fleet.host('ctl'), fleet.host('cmp')
        fleet.wait_for_agents([cls.ctl, cls.cmp])

    @classmethod
    def cleanup_fleet(cls):
        super().cleanup_fleet()
        for host in ('localhost', '127.0.0.1'):
            fleet_mod.sql("DROP USER IF EXISTS '%s'@'%s'"
                          % ('ft%s' % cls.fleet.id, host))

    def setUp(self):
        super().setUp()
        self.addCleanup(self.dump_mode, None)

    def dump_mode(self, mode):
        for path in (self.mode_file, self.mode_file + '.started'):
            if os.path.exists(path):
                os.unlink(path)
        if mode:
            with open(self.mode_file, 'w') as f:
                f.write(mode)

    def nova_backup(self, role):
        backup = self.backup('--host', self.fleet.host(role), '--service',
                             'nova')
        (art,) = available(backup)
        return backup, art

    # -- concurrency ---------------------------------------------------

    def test_two_backups_of_one_service_at_once(self):
        fleet = self.fleet
        self.dump_mode('hold')
        first, _ = fleet.manage_json('backup', 'create', '--host', self.ctl,
                                     '--service', 'mysql')
        wait_for('the first dump to start',
                 lambda: os.path.exists(self.mode_file + '.started'))
        second = self.backup('--host', self.ctl, '--service', 'mysql',
                             expect='FAILED')
        os.unlink(self.mode_file)       # the first dump goes on
        (task,) = second['tasks']
        self.assertEqual('FAILED', task['status'])
        self.assertEqual(
            'Another operation on mysql is running on %s (backup task %s); '
            'backup task %s refused' % (self.ctl, first['tasks'][0]['id'],
                                        task['id']), task['error'])
        self.assert_nothing_stored(second)
        first = self.wait_backup(first['id'])
        self.assertEqual('SUCCEEDED', first['status'])
        (art,) = available(first)
        self.assertEqual(self.db, art['name'])
        self.assert_intact(art)

    # -- mysqldump -----------------------------------------------------

    def test_mysqldump_failing_midstream_stores_nothing(self):
        good = self.backup('--host', self.ctl, '--service', 'mysql')
        self.dump_mode('fail-midstream')
        failed = self.backup('--host', self.ctl, '--service', 'mysql',
                             expect='FAILED')
        (task,) = failed['tasks']
        self.assertIn('mysqldump of %s failed' % self.db, task['error'])
        self.assertIn('it exited with status 2', task['error'])
        self.assertIn('Lost connection', task['error'])
        self.assertNotIn(self.db_password, task['error'])
        self.assert_nothing_stored(failed)
        self.assertEqual([], [f for f in stored_files(self.fleet.storage)
                              if f.endswith('.partial')])
        for art in available(good):
            self.assert_intact(art)

    def test_no_password_in_cmdline_logs_rpc_or_catalogue(self):
        fleet = self.fleet
        secret = self.db_password.encode()
        taps = [broker.Tap(fleet, 'osbackup-agent.%s' % self.ctl),
                broker.Tap(fleet, 'osbackup-conductor')]
        for tap in taps:
            self.addCleanup(tap.close)
        self.dump_mode('hold')
        started, _ = fleet.manage_json('backup', 'create', '--host',
                                       self.ctl, '--service', 'mysql')
        wait_for('the dump to start',
                 lambda: os.path.exists(self.mode_file + '.started'))
        # While mysqldump (our wrapper, with the agent's argv) runs.
        leaks = []
        for pid in filter(str.isdigit, os.listdir('/proc')):
            for what in ('cmdline', 'environ'):
                try:
                    with open('/proc/%s/%s' % (pid, what), 'rb') as f:
                        if secret in f.read():
                            leaks.append('/proc/%s/%s' % (pid, what))
                except OSError:
                    pass
        os.unlink(self.mode_file)
        self.assertEqual([], leaks)
        backup = self.wait_backup(started['id'])
        self.assertEqual('SUCCEEDED', backup['status'])
        for tap in taps:
            bodies = [raw for raw, _msg in tap.messages()]
            self.assertTrue(bodies)
            self.assertFalse(any(secret in raw for raw in bodies),
                             'password in an RPC message')
        for name in ('ctl', 'conductor'):
            self.assertNotIn(self.db_password, fleet.log(name))
        catalogue = subprocess.run(
            ['mysqldump', '-uroot', fleet.catalogue_db], check=True,
            capture_output=True).stdout
        leaked = secret in catalogue
        self.assertFalse(leaked, 'password in the catalogue')
        shown = fleet.manage('backup', 'show', str(backup['id'])).stdout
        self.assertNotIn(self.db_password, shown)

    # -- message trust -------------------------------------------------

    def test_forged_and_replayed_tasks_are_never_run(self):
        fleet = self.fleet
        key = 'osbackup-agent.%s' % self.cmp
        tap = broker.Tap(fleet, key)
        self.addCleanup(tap.close)
        backup, art = self.nova_backup('cmp')
        _raw, captured = tap.wait(lambda m: m.get('method') == 'run_task')
        task = captured['args']['task']
        self.assertEqual(backup['tasks'][0]['id'], task['id'])
        before = stored_files(fleet.storage)
        forged_ids = []

        def variant(seal='keep', **changes):
            msg = json.loads(json.dumps(captured))
            forged = dict(task, id=str(uuid.uuid4()), **changes)
            forged_ids.append(forged['id'])
            msg['args']['task'] = forged
            if seal is None:
                msg.pop('_context_' + signing.SEAL_KEY)
            elif seal != 'keep':
                msg['_context_' + signing.SEAL_KEY] = seal
            return msg

        attacker = signing.Signer(os.urandom(32), 'attacker', 3600)
        fleet_key = signing.Signer(
            keyfile.load(fleet.key_file, 'key'), fleet.host('conductor'),
            3600)
        # Captured two hours ago, kept, replayed with a fresh nonce.
        stale = variant()
        with mock.patch.object(time, 'time',
                               return_value=time.time() - 7200):
            stale['_context_' + signing.SEAL_KEY] = fleet_key.seal(
                'run_task', stale['args'], 'osbackup-agent', self.cmp, '1.0')
        messages = [
            ('replayed', captured),
            ('bad signature', variant(service='glance')),
            ('unsigned', variant(seal=None)),
            ('another key', variant(seal=attacker.seal(
                'run_task', variant()['args'], 'osbackup-agent', self.cmp,
                '1.0'))),
            ('expired', stale),
        ]
        for _reason, msg in messages:
            broker.publish(fleet, key, msg)
        events = wait_for('%d security events' % len(messages), lambda: (
            lambda e: e if len(e) >= len(messages) else None)(
                self.security_events('cmp')))
        for reason, _msg in messages:
            self.assertEqual(1, sum(reason in e for e in events),
                             '%s not logged once in %s' % (reason, events))
        log = fleet.log('cmp')
        for task_id in forged_ids:
            self.assertNotIn(task_id, log)
        self.assertEqual(before, stored_files(fleet.storage))
        self.assertEqual(backup, self.show(backup['id']))
        listed, _ = fleet.manage_json('backup', 'list')
        self.assertEqual(backup['id'], listed[0]['id'])

    def test_without_a_key_file_a_different_key_is_refused(self):
        """No key file: a derived key, a warning, and no trust by others."""
        fleet = self.fleet
        conf = fleet.write_conf('nokey', 'ft-nokey-%s' % fleet.id, {
            'DEFAULT': {'rpc_signing_key_file': ''}})
        # The fleet's conductor holds a key file; a client deriving its
        # key from the broker credentials signs differently and is
        # refused, with a pointer to the option.
        before, _ = fleet.manage_json('backup', 'list')
        proc = fleet.manage('backup', 'create', conf=conf, check=False)
        self.assertNotEqual(0, proc.returncode)
        self.assertIn('key derived from the transport_url', proc.stderr)
        self.assertIn('rpc_signing_key_file', proc.stderr.split(
            'key derived from the transport_url', 1)[1])
        self.assertNotIn('Traceback', proc.stderr)
        after, _ = fleet.manage_json('backup', 'list')
        self.assertEqual(before, after)
        # A key file other users can read is refused too.
        shared = os.path.join(fleet.dir, 'readable.key')
        fleet_mod.write_file(shared, os.urandom(32).hex(), 0o644)
        conf = fleet.write_conf('readable', 'ft-nokey-%s' % fleet.id, {
            'DEFAULT': {'rpc_signing_key_file': shared}})
        proc = fleet.manage('backup', 'create', conf=conf, check=False)
        self.assertEqual(2, proc.returncode)
        self.assertIn('accessible to other users (mode 0644)', proc.stderr)

    # -- what gets archived --------------------------------------------

    def test_symlink_to_etc_shadow_is_stored_as_a_link(self):
        fleet = self.fleet
        link = os.path.join(fleet.node_root('ctl'), 'etc/keystone/shadow')
        os.symlink('/etc/shadow', link)
        self.addCleanup(os.unlink, link)
        backup = self.backup('--host', self.ctl, '--service', 'keystone')
        (art,) = available(backup)
        member = tar_members(art['location'])['etc/keystone/shadow']
        self.assertTrue(member.issym())
        self.assertEqual('/etc/shadow', member.linkname)
        with open('/etc/shadow', 'rb') as f:
            shadow = f.read()
        leaked = bool(shadow) and shadow in decompress(art['location'])
        self.assertFalse(leaked, '/etc/shadow content in the archive')
        result = fleet_mod.sql("SELECT result FROM tasks WHERE backup_id = "
                               "%d" % backup['id'], fleet.catalogue_db)
        self.assertNotIn('etc/keystone/shadow', result)
        # A restore brings the link back as a link and writes nothing
        # through it.
        os.unlink(link)
        self.restore(backup['id'], '--service', 'keystone')
        self.assertEqual('/etc/shadow', os.readlink(link))
        # Not compared byte for byte: other tests running beside this one
        # add users (useradd, package installs), which rewrites the file.
        self.assertFalse(os.path.islink('/etc/shadow'))
        with open('/etc/shadow', 'rb') as f:
            self.assertTrue(f.read().startswith(b'root:'),
                            '/etc/shadow was written through the link')

    # -- damaged artifacts ---------------------------------------------

    def _refused(self, backup, role, check):
        """Restore nova on ``role``: refused at prepare, nothing changed."""
        fleet = self.fleet
        snap = test_restore.snapshot(fleet, role, uuid.uuid4().hex[:6])
        events = len(fleet.unit_events(role))
        origs = test_restore.origs(fleet, role)
        restore = self.restore(backup['id'], '--service', 'nova', '--host',
                               fleet.host(role), expect='FAILED')
        self.assertIn('prepare failed on %s' % fleet.host(role),
                      restore['error'])
        failed = [s for s in restore['steps'] if s['status'] == 'FAILED']
        self.assertRegex(failed[0]['error'], check)
        self.assert_same_tree(role, snap)
        self.assertEqual(events, len(fleet.unit_events(role)))
        self.assertEqual(origs, test_restore.origs(fleet, role))
        staged = [n for top in ('etc', 'var/lib', 'var/log') for n in
                  os.listdir(os.path.join(fleet.node_root(role), top))
                  if 'osbackup-restore' in n]
        self.assertEqual([], staged)
        shown = self.show(backup['id'])
        self.assertEqual('SUCCEEDED', shown['status'])
        return restore

    def test_truncated_archive_is_refused(self):
        backup, art = self.nova_backup('ctl')
        with open(art['location'], 'r+b') as f:
            f.truncate(art['size'] // 2)
        self._refused(backup, 'ctl', 'sha256|checksum|truncated')

    def test_tampered_manifest_is_found_by_deep_verify(self):
        # A restore proves the archive by its sha256 in the catalogue and
        # hashes no file again; a deep verify hashes every file, so it
        # finds an archive whose checksum was rewritten in the catalogue.
        fleet = self.fleet
        backup, art = self.nova_backup('ctl')
        with tarfile.open(fileobj=io.BytesIO(
                decompress(art['location']))) as tar:
            out = io.BytesIO()
            with tarfile.open(fileobj=out, mode='w',
                              format=tarfile.PAX_FORMAT) as new:
                for member in tar.getmembers():
                    data = tar.extractfile(member).read() \
                        if member.isreg() else None
                    if member.name == '.osbackup-manifest.json':
                        manifest = json.loads(data)
                        for entry in manifest['entries']:
                            if entry['path'] == 'etc/nova/nova.conf':
                                entry['sha256'] = '0' * 64
                        data = json.dumps(manifest).encode()
                        member.size = len(data)
                    new.addfile(member, io.BytesIO(data) if data is not None
                                else None)
        # The attacker rewrote the catalogue's checksum as well.
        fleet.plant(art, zstandard.ZstdCompressor().compress(out.getvalue()))
        problem, _ = self.deep_verify_problem(backup['id'])
        self.assertRegex(problem['error'], "'etc/nova/nova.conf': sha256 "
                                           ".*, manifest says '0{64}'")

    def test_crafted_absolute_and_hard_link_members_are_refused(self):
        fleet = self.fleet
        for kind, why in (('absolute', 'absolute name'),
                          ('hardlink', 'hard link')):
            backup, art = self.nova_backup('ctl')
            if kind == 'absolute':
                data = fleet_mod.hostile_archive(
                    tarfile.TarInfo('/etc/nova/evil.conf'), b'owned\n')
            else:
                member = tarfile.TarInfo('etc/nova/hard')
                member.type = tarfile.LNKTYPE
                member.linkname = 'etc/nova/nova.conf'
                data = fleet_mod.hostile_archive(member)
            fleet.plant(art, data)
            self._refused(backup, 'ctl', 'unsafe archive member .*%s' % why)
        self.assertFalse(os.path.exists('/etc/nova/evil.conf'))

    def test_encrypted_artifacts_restore_and_tampering_is_refused(self):
        fleet = self.fleet
        backup, art = self.nova_backup('cmp')
        location = art['location']
        self.assertTrue(location.endswith('.tar.zst.enc'), location)
        with open(location, 'rb') as f:
            stored = f.read()
        self.assertTrue(stored.startswith(b'OSBKENC1'))
        self.assertNotIn(b'compute_driver', stored)
        self.assertNotEqual(art['sha256'], sha256_of(location))
        self.assertEqual(0o600, os.stat(location).st_mode & 0o777)
        self.assertEqual(0o700, os.stat(os.path.dirname(location)).st_mode
                         & 0o777)
        # Encrypted artifacts restore like any other.
        conf = os.path.join(fleet.node_root('cmp'), 'etc/nova/nova.conf')
        with open(conf) as f:
            good = f.read()
        with open(conf, 'a') as f:
            f.write('damaged = true\n')
        self.restore(backup['id'], '--service', 'nova', '--host', self.cmp)
        with open(conf) as f:
            self.assertEqual(good, f.read())
        # One flipped bit in the ciphertext: refused, nothing changed.
        with open(location, 'r+b') as f:
            f.seek(len(stored) // 2)
            byte = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([byte[0] ^ 0x01]))
        self._refused(backup, 'cmp', 'cannot be decrypted/authenticated: '
                                     'chunk 0 failed authentication')

    # -- operator input --------------------------------------------------

    def test_unknown_names_and_missing_backup_on_the_cli(self):
        fleet = self.fleet
        backup, _art = self.nova_backup('cmp')
        restores_before = fleet.manage_json('restore', 'list')[0]
        backups_before = fleet.manage_json('backup', 'list')[0]
        cases = [
            (('backup', 'create', '--service', 'bogus'),
             "Unknown service 'bogus'"),
            (('backup', 'create', '--host', 'nosuchhost'),
             "Unknown host 'nosuchhost'"),
            (('restore', 'create', '999999'), 'Backup 999999 not found'),
            (('restore', 'create', str(backup['id']), '--service', 'bogus'),
             "has nothing for service 'bogus'"),
            (('restore', 'create', str(backup['id']), '--host', 'nosuch'),
             "has nothing for host 'nosuch'"),
            (('restore', 'show', '999999'), 'Restore 999999 not found'),
        ]
        for argv, message in cases:
            proc = fleet.manage(*argv, check=False)
            self.assertEqual(2, proc.returncode, (argv, proc.stderr))
            self.assertIn('ERROR: ', proc.stderr)
            self.assertIn(message, proc.stderr)
            self.assertNotIn('Traceback', proc.stderr)
        self.assertEqual(restores_before,
                         fleet.manage_json('restore', 'list')[0])
        self.assertEqual(backups_before,
                         fleet.manage_json('backup', 'list')[0])


# -- processes dying ---------------------------------------------------------

class AgentCrashTest(FaultTestMixin, testtools.TestCase):
    """An agent SIGKILLed in the middle of its work, then started again."""

    def setUp(self):
        super().setUp()
        self.fleet = fleet_mod.Fleet()
        self.addCleanup(self.fleet.cleanup)
        fleet_mod.make_controller_tree(self.fleet.node_root('ctl'))
        self.host = self.fleet.host('ctl')

    def test_agent_killed_mid_archive_fails_task_and_removes_partial(self):
        fleet = self.fleet
        # zstd at level 19 on 40 MB: seconds of archiving to kill into.
        sections = {'agent': {'drivers': 'nova'},
                    'storage': {'compression_level': '19'}}
        fleet.start_conductor()
        fleet.start_agent('ctl', sections)
        fleet.wait_for_agents([self.host])
        good = self.backup('--host', self.host, '--service', 'nova')
        (good_art,) = available(good)
        fleet_mod.write_file(
            os.path.join(fleet.node_root('ctl'), 'var/lib/nova/big'),
            b''.join(os.urandom(512).hex().encode() * 4
                     for _ in range(10000)))
        started, _ = fleet.manage_json('backup', 'create', '--host',
                                       self.host, '--service', 'nova')
        partial = wait_for('a partial artifact with data', lambda: [
            f for f in stored_files(fleet.storage)
            if f.endswith('.partial') and os.path.getsize(f) > 0])
        fleet.stop('ctl', signal.SIGKILL)
        self.assertTrue(os.path.exists(partial[0]))
        self.assertEqual('RUNNING', self.show(started['id'])['status'])
        fleet.start_agent('ctl', sections)
        backup = self.wait_backup(started['id'])
        self.assertEqual('FAILED', backup['status'])
        (task,) = backup['tasks']
        self.assertEqual('FAILED', task['status'])
        self.assertEqual('the agent on %s stopped while running the task'
                         % self.host, task['error'])
        self.assertFalse(os.path.exists(partial[0]))
        self.assert_nothing_stored(backup)
        self.assertIn('Removed partial artifact %s' % partial[0],
                      fleet.log('ctl'))
        self.assert_intact(good_art)

    def test_agent_killed_mid_restore_rolls_back_at_restart(self):
        fleet = self.fleet
        flag = os.path.join(fleet.dir, 'hang-start')
        mark = os.path.join(fleet.dir, 'hanging')
        script = os.path.join(fleet.dir, 'hang-start.sh')
        with open(script, 'w') as f:
            f.write('#!/bin/sh\n'
                    'if [ -e %s ]; then\n'
                    '    touch %s\n'
                    '    while [ -e %s ]; do sleep 0.1; done\n'
                    '    exit 1\n'
                    'fi\n'
                    'exec %s %s --dir %s --root %s start "$1"\n'
                    % (flag, mark, flag, sys.executable,
                       os.path.join(HERE, 'standin.py'),
                       fleet.units_dir('ctl'), fleet.node_root('ctl')))
        os.chmod(script, 0o755)
        sections = fleet.standin_sections('ctl', {'nova': ['nova-api']})
        sections['service_command']['start'] = script + ' {unit}'
        sections['agent'] = {'drivers': 'nova'}
        fleet.start_conductor()
        fleet.start_agent('ctl', sections)
        fleet.unit('ctl', 'start', 'nova-api')
        fleet.wait_for_agents([self.host])
        backup = self.backup('--host', self.host, '--service', 'nova')
        conf = os.path.join(fleet.node_root('ctl'), 'etc/nova/nova.conf')
        with open(conf, 'a') as f:
            f.write('changed after the backup\n')
        before = test_restore.snapshot(fleet, 'ctl', 'before')

        open(flag, 'w').close()
        started, _ = fleet.manage_json('restore', 'create',
                                       str(backup['id']), '--service',
                                       'nova')
        wait_for('the restore to reach its start phase',
                 lambda: os.path.exists(mark))
        # Half-restored: the backup's tree is in place, the old one aside.
        with open(conf) as f:
            self.assertNotIn('changed after the backup', f.read())
        self.assertEqual(['nova.orig-'],
                         [n[:10] for n in test_restore.origs(fleet, 'ctl')
                          if n.startswith('nova.')][:1])
        # Meanwhile a backup of nova on that host is refused.
        refused = self.backup('--host', self.host, '--service', 'nova',
                              expect='FAILED')
        (task,) = refused['tasks']
        self.assertEqual('Another operation on nova is running on %s '
                         '(restore %s); backup task %s refused'
                         % (self.host, started['id'], task['id']),
                         task['error'])
        self.assert_nothing_stored(refused)

        fleet.stop('ctl', signal.SIGKILL)
        os.unlink(flag)
        fleet.start_agent('ctl', sections)
        restore = wait_for('the restore to end', lambda: (
            lambda r: r if r['status'] != 'RUNNING' else None)(
                fleet.manage_json('restore', 'show',
                                  str(started['id']))[0]))
        self.assertEqual('FAILED', restore['status'])
        self.assertEqual('start failed on %s: the agent on %s stopped while '
                         'running the task' % (self.host, self.host),
                         restore['error'])
        self.assert_same_tree('ctl', before)
        self.assertEqual([], test_restore.origs(fleet, 'ctl'))
        self.assertIn('Rolling back restore %s, interrupted by an agent '
                      'restart' % started['id'], fleet.log('ctl'))
        self.assertEqual(0, fleet.unit('ctl', 'status', 'nova-api'))
        self.assert_intact(available(backup)[0])


class ConductorRestartTest(FaultTestMixin, testtools.TestCase):

    def test_conductor_restarted_mid_backup_records_the_result(self):
        fleet, host, db, mode_file = self.held_dump_fleet()
        tap = broker.Tap(fleet, 'osbackup-conductor')
        self.addCleanup(tap.close)
        started, _ = fleet.manage_json('backup', 'create', '--host', host,
                                       '--service', 'mysql')
        wait_for('the dump to start',
                 lambda: os.path.exists(mode_file + '.started'))
        fleet.stop('conductor', signal.SIGKILL)
        # The agent ends its task while no conductor runs: the report
        # waits in the broker.
        os.unlink(mode_file)
        tap.wait(lambda m: m.get('method') == 'task_finished')
        fleet.start_conductor()
        backup = self.wait_backup(started['id'])
        self.assertEqual('SUCCEEDED', backup['status'])
        (task,) = backup['tasks']
        self.assertEqual('SUCCEEDED', task['status'])
        (art,) = available(backup)
        self.assertEqual(db, art['name'])
        self.assert_intact(art)


class AgentDownTest(FaultTestMixin, testtools.TestCase):
    """Tasks cast to an agent that is stopped (its queue still exists)."""

    def setUp(self):
        super().setUp()
        self.fleet = fleet_mod.Fleet()
        self.addCleanup(self.fleet.cleanup)
        fleet_mod.make_compute_tree(self.fleet.node_root('cmp'))
        self.host = self.fleet.host('cmp')

    def start(self, start_timeout):
        # The killed agent still counts as up (a minute), so it is sent
        # tasks: what happens when an agent dies between two heartbeats
        # (a clean stop says goodbye: see test_daemons.GoodbyeTest).
        self.fleet.start_conductor(sections={'conductor': {
            'task_start_timeout': str(start_timeout),
            'periodic_interval': '1', 'agent_down_time': '60'}})
        self.fleet.start_agent('cmp', {'agent': {'drivers': 'nova'}})
        self.fleet.wait_for_agents([self.host])

    def test_cast_to_stopped_agent_times_out_and_never_runs_late(self):
        fleet = self.fleet
        self.start(start_timeout=5)
        fleet.stop('cmp', signal.SIGKILL)
        started, _ = fleet.manage_json('backup', 'create', '--host',
                                       self.host, '--service', 'nova')
        backup = self.wait_backup(started['id'], timeout=60)
        self.assertEqual('FAILED', backup['status'])
        (task,) = backup['tasks']
        self.assertEqual('TIMED_OUT', task['status'])
        self.assertEqual('agent %s did not start the task within 5 s'
                         % self.host, task['error'])
        # The agent comes back and finds the task waiting in its queue.
        fleet.start_agent('cmp', {'agent': {'drivers': 'nova'}})
        wait_for('the agent to refuse the late task', lambda: (
            'Task %s expired at' % task['id']) in fleet.log('cmp'))
        self.assertIn('refusing to run it late', fleet.log('cmp'))
        self.assertNotIn('Task %s accepted' % task['id'], fleet.log('cmp'))
        time.sleep(2)   # its refusal report reaches the conductor
        self.assertEqual(backup, self.show(backup['id']))
        self.assert_nothing_stored(backup)

    def test_forged_report_cannot_complete_a_task(self):
        fleet = self.fleet
        tap = broker.Tap(fleet, 'osbackup-conductor')
        self.addCleanup(tap.close)
        self.start(start_timeout=120)
        # A heartbeat the conductor surely got: one sent after the agent
        # was seen up, followed by another.
        tap.messages()
        _raw, heartbeat = tap.wait(lambda m: m.get('method') == 'heartbeat')
        tap.wait(lambda m: m.get('method') == 'heartbeat')
        time.sleep(1)
        fleet.stop('cmp', signal.SIGKILL)
        started, _ = fleet.manage_json('backup', 'create', '--host',
                                       self.host, '--service', 'nova')
        (task,) = started['tasks']
        report = dict(heartbeat, method='task_finished', args={
            'task_id': task['id'], 'host': self.host, 'status': 'SUCCEEDED',
            'error': None, 'result': {'artifacts': [{
                'name': 'nova', 'kind': 'files', 'location': '/etc/shadow',
                'size': 1, 'sha256': '0' * 64, 'meta': {}}]}})
        unsigned = dict(report)
        unsigned.pop('_context_' + signing.SEAL_KEY)
        for msg in (report, unsigned, heartbeat):
            broker.publish(fleet, 'osbackup-conductor', msg)
        events = wait_for('three security events', lambda: (
            lambda e: e if len(e) >= 3 else None)(
                self.security_events('conductor')))
        for reason in ('bad signature', 'unsigned', 'replayed'):
            self.assertEqual(1, sum(reason in e for e in events), events)
        backup = self.show(started['id'])
        self.assertEqual('RUNNING', backup['status'])
        self.assertEqual('PENDING', backup['tasks'][0]['status'])
        self.assertEqual([], available(backup))


class BrokerConnectionTest(FaultTestMixin, testtools.TestCase):

    def test_broker_connections_dropped_mid_backup(self):
        fleet, host, db, mode_file = self.held_dump_fleet()
        started, _ = fleet.manage_json('backup', 'create', '--host', host,
                                       '--service', 'mysql')
        wait_for('the dump to start',
                 lambda: os.path.exists(mode_file + '.started'))
        self.assertGreaterEqual(broker.drop_connections(fleet), 2)
        os.unlink(mode_file)
        backup = self.wait_backup(started['id'])
        self.assertEqual('SUCCEEDED', backup['status'])
        (art,) = available(backup)
        self.assert_intact(art)
        fleet.wait_for_agents([host])


class DiskFullTest(FaultTestMixin, fleet_mod.FleetTestCase):
    """The agent's storage on a 4 MiB tmpfs."""

    @classmethod
    def build_fleet(cls, fleet):
        cls.mount = tempfile.mkdtemp(prefix='osbackup-ft-tmpfs-')
        subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=4m,mode=0700',
                        'tmpfs', cls.mount], check=True)
        fleet_mod.make_controller_tree(fleet.node_root('ctl'))
        cls.host = fleet.host('ctl')
        fleet.start_conductor()
        fleet.start_agent('ctl', {
            'agent': {'drivers': 'nova,glance,keystone'},
            'storage': {'local_path': cls.mount}})
        fleet.wait_for_agents([cls.host])

    @classmethod
    def cleanup_fleet(cls):
        super().cleanup_fleet()
        if hasattr(cls, 'mount'):
            subprocess.run(['umount', cls.mount], check=False)
            shutil.rmtree(cls.mount, ignore_errors=True)

    def big_file(self, service, size):
        path = os.path.join(self.fleet.node_root('ctl'), 'var/lib', service,
                            'big')
        fleet_mod.write_file(path, os.urandom(size))
        self.addCleanup(os.unlink, path)

    def test_disk_full_mid_write_leaves_no_partial_artifact(self):
        good = self.backup('--host', self.host, '--service', 'keystone')
        (good_art,) = available(good)
        self.big_file('glance', 6 * 2 ** 20)
        backup = self.backup('--host', self.host, '--service', 'glance',
                             expect='FAILED')
        (task,) = backup['tasks']
        self.assertEqual('FAILED', task['status'])
        self.assertIn('No space left on the backup target writing %s/%s/%s/'
                      'glance/glance.tar.zst' % (self.mount, self.host,
                                                 backup['uuid']),
                      task['error'])
        self.assertEqual([], available(backup))
        self.assertEqual([good_art['location']],
                         [f for f in stored_files(self.mount)
                          if 'keystone' in f or 'glance' in f])
        self.assert_intact(good_art)

    def test_too_little_space_fails_fast(self):
        self.big_file('nova', 3 * 2 ** 19)
        good = self.backup('--host', self.host, '--service', 'nova')
        (good_art,) = available(good)
        # Leave less room than the last nova backup took.
        filler = os.path.join(self.mount, 'filler')
        free = shutil.disk_usage(self.mount).free
        fleet_mod.write_file(filler, bytes(free - good_art['size'] // 2))
        self.addCleanup(os.unlink, filler)
        files = stored_files(self.mount)
        backup = self.backup('--host', self.host, '--service', 'nova',
                             expect='FAILED')
        (task,) = backup['tasks']
        self.assertRegex(task['error'], (
            r'^Not enough free space on backup target local for nova: the '
            r'last backup of nova on %s took 1\.5 MiB, 1\.8 MiB with the '
            r'20%% margin, and only \d+\.\d KiB are free; nothing was '
            r'written$' % self.host))
        self.assertEqual(files, stored_files(self.mount))
        self.assertEqual([], available(backup))
        self.assert_intact(good_art)
