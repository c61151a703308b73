"""Fleet backup end to end: conductor and two agents as real processes.

RabbitMQ, MariaDB, mysqldump and the osbackup commands are the real ones;
the agents' node trees live in a temp dir. The archives must unpack to
exactly the source files and the dumps must load back.
"""

import filecmp
import os
import signal
import subprocess
import tempfile
import time

import testtools

from osbackup.tests.functional import fleet as fleet_mod
from osbackup.tests.functional import host_tools

FILE_SERVICES = ('nova', 'glance', 'keystone', 'cinder', 'swift')


def unpack(location, dest):
    tar = host_tools.require(host_tools.ZSTD)['tar']
    subprocess.run([tar, '--zstd', '-xpf', location, '-C', dest],
                   check=True)


def assert_same_tree(test, src, dst, skip=()):
    """Every file, link and dir of ``src`` is in ``dst`` byte for byte."""
    for dirpath, dirs, files in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        if any(rel == s or rel.startswith(s + os.sep) for s in skip):
            dirs[:] = []
            continue
        for name in dirs + files:
            a = os.path.join(dirpath, name)
            b = os.path.join(dst, rel, name)
            if os.path.relpath(a, src) in skip:
                continue
            test.assertTrue(os.path.lexists(b), 'missing %s' % b)
            if os.path.islink(a):
                test.assertEqual(os.readlink(a), os.readlink(b))
            elif os.path.isfile(a):
                test.assertTrue(filecmp.cmp(a, b, shallow=False),
                                'content differs: %s' % b)
                test.assertEqual(os.stat(a).st_mode, os.stat(b).st_mode)
                test.assertEqual(int(os.stat(a).st_mtime),
                                 int(os.stat(b).st_mtime))


class FleetBackupTest(fleet_mod.FleetTestCase):
    """One conductor, a controller and a compute agent."""

    @classmethod
    def build_fleet(cls, fleet):
        fleet_mod.make_controller_tree(fleet.node_root('ctl'))
        fleet_mod.make_compute_tree(fleet.node_root('cmp'))
        cls.nova_db = fleet.create_database(
            'nova', {'instances': 500, 'services': 20})
        cls.keystone_db = fleet.create_database(
            'keystone', {'project': 50, 'token_data': 300})
        fleet.start_conductor()
        fleet.start_agent('ctl', {'mysql': {
            'databases': ','.join([cls.nova_db, cls.keystone_db,
                                   'mysql'])}})
        fleet.start_agent('cmp', {'agent': {
            'drivers': 'nova,glance,keystone,cinder,swift'}})
        fleet.wait_for_agents([fleet.host('ctl'), fleet.host('cmp')])

    def _artifacts(self, backup):
        return {(a['host'], a['name']): a for a in backup['artifacts']}

    def test_agent_list_shows_fleet(self):
        agents, _ = self.fleet.manage_json('agent', 'list')
        by_host = {a['host']: a for a in agents}
        ctl = by_host[self.fleet.host('ctl')]
        cmp = by_host[self.fleet.host('cmp')]
        self.assertEqual('up', ctl['state'])
        self.assertEqual('up', cmp['state'])
        self.assertEqual(sorted(FILE_SERVICES + ('mysql',)),
                         sorted(ctl['services']))
        self.assertEqual(['nova'], cmp['services'])
        self.assertGreater(ctl['free_bytes'], 0)
        self.assertNotIn('mysql', cmp['drivers'])

    def test_fleet_backup_archives_and_dumps_restore_exactly(self):
        tools = host_tools.require(host_tools.ZSTD)
        fleet = self.fleet
        # Full: each archive alone holds its whole tree (an incremental
        # one needs its bases, see test_incremental).
        backup, proc = fleet.manage_json('backup', 'create', '--wait',
                                         '--full')
        self.assertEqual('SUCCEEDED', backup['status'], proc.stderr)
        self.assertIn('tasks done', proc.stderr)
        arts = self._artifacts(backup)
        ctl, cmp = fleet.host('ctl'), fleet.host('cmp')
        for svc in FILE_SERVICES:
            self.assertEqual('available', arts[(ctl, svc)]['status'])
        for db in (self.nova_db, self.keystone_db, 'mysql'):
            self.assertEqual('available', arts[(ctl, db)]['status'])
            self.assertEqual('mysql', arts[(ctl, db)]['service'])
        self.assertEqual('available', arts[(cmp, 'nova')]['status'])
        for svc in ('glance', 'keystone', 'cinder', 'swift'):
            self.assertEqual('skipped', arts[(cmp, svc)]['status'])
        for art in backup['artifacts']:
            if art['status'] != 'available':
                continue
            self.assertTrue(os.path.isfile(art['location']))
            self.assertEqual(art['size'], os.path.getsize(art['location']))
            self.assertEqual(0o600, os.stat(art['location']).st_mode & 0o777)
            digest = subprocess.run(['sha256sum', art['location']],
                                    capture_output=True, text=True,
                                    check=True).stdout.split()[0]
            self.assertEqual(art['sha256'], digest)

        # File sets unpack to exactly the source trees, minus exclusions.
        for role, host, services in (('ctl', ctl, FILE_SERVICES),
                                     ('cmp', cmp, ('nova',))):
            dest = tempfile.mkdtemp(dir=fleet.dir)
            for svc in services:
                unpack(arts[(host, svc)]['location'], dest)
            assert_same_tree(self, fleet.node_root(role), dest,
                             skip=('var/lib/nova/instances',
                                   'var/lib/glance/images'))
            self.assertFalse(os.path.exists(
                os.path.join(dest, 'var/lib/nova/instances')))
            self.assertFalse(os.path.exists(
                os.path.join(dest, 'var/lib/glance/images')))

        # Each database's dump loads back on its own.
        before = fleet.checksums(self.nova_db)
        fleet_mod.sql('DROP DATABASE %s' % self.nova_db)
        with open(arts[(ctl, self.nova_db)]['location'], 'rb') as f:
            zstd = subprocess.Popen([tools['zstd'], '-dc'], stdin=f,
                                    stdout=subprocess.PIPE)
            subprocess.run(fleet_mod.DB_ADMIN, stdin=zstd.stdout, check=True)
            self.assertEqual(0, zstd.wait())
        self.assertEqual(before, fleet.checksums(self.nova_db))

        # backup list and show read the same record from the catalogue.
        listed, _ = fleet.manage_json('backup', 'list')
        self.assertIn(backup['id'], [b['id'] for b in listed])
        shown, _ = fleet.manage_json('backup', 'show', str(backup['id']))
        self.assertEqual(backup['artifacts'], shown['artifacts'])

    def test_create_without_wait_returns_at_once(self):
        backup, _ = self.fleet.manage_json(
            'backup', 'create', '--host', self.fleet.host('cmp'),
            '--service', 'nova')
        self.assertIn(backup['status'], ('RUNNING', 'SUCCEEDED'))
        deadline = time.monotonic() + 60
        while backup['status'] == 'RUNNING' and time.monotonic() < deadline:
            time.sleep(0.5)
            backup, _ = self.fleet.manage_json('backup', 'show',
                                               str(backup['id']))
        self.assertEqual('SUCCEEDED', backup['status'])
        self.assertEqual([(self.fleet.host('cmp'), 'nova')],
                         [(a['host'], a['service'])
                          for a in backup['artifacts']])

    def test_bad_input_is_an_error_not_a_traceback(self):
        for argv in (('--service', 'bogus'), ('--host', 'nosuchhost'),
                     ('--service', '../etc')):
            proc = self.fleet.manage('backup', 'create', *argv, check=False)
            self.assertEqual(2, proc.returncode, proc.stderr)
            self.assertIn('ERROR:', proc.stderr)
            self.assertNotIn('Traceback', proc.stderr)
        proc = self.fleet.manage('backup', 'show', '999999', check=False)
        self.assertEqual(2, proc.returncode)
        self.assertIn('not found', proc.stderr)


class FailingDumpTest(testtools.TestCase):
    """A mysqldump that cannot log in fails the task and stores nothing."""

    def test_bad_credentials_fail_the_backup(self):
        fleet = fleet_mod.Fleet()
        self.addCleanup(fleet.cleanup)
        fleet.start_conductor()
        fleet.start_agent('ctl', {
            'agent': {'drivers': 'mysql'},
            'mysql': {'user': 'nosuchuser', 'password': 'wrong-Pw-123',
                      'host': '127.0.0.1'}})
        fleet.wait_for_agents([fleet.host('ctl')])
        backup, proc = fleet.manage_json('backup', 'create', '--wait',
                                         check=False)
        self.assertEqual(1, proc.returncode)
        self.assertEqual('FAILED', backup['status'])
        (task,) = backup['tasks']
        self.assertEqual('FAILED', task['status'])
        self.assertIn('Access denied', task['error'])
        self.assertNotIn('wrong-Pw-123', task['error'])
        self.assertEqual([], [a for a in backup['artifacts']
                              if a['status'] == 'available'])
        self.assertFalse(os.path.exists(fleet.storage) and any(
            files for _, _, files in os.walk(fleet.storage)))
        # The agent stops cleanly on SIGTERM.
        self.assertEqual(0, fleet.stop('ctl', signal.SIGTERM))
        self.assertNotIn('wrong-Pw-123', fleet.log('ctl'))


class KeylessFleetTest(testtools.TestCase):
    """A fleet configured with only a transport_url still works.

    Without ``rpc_signing_key_file`` every process derives the same key
    from the broker credentials (and warns): a setup following only the
    basic options must not fail.
    """

    def test_backup_without_a_key_file(self):
        fleet = fleet_mod.Fleet()
        self.addCleanup(fleet.cleanup)
        fleet_mod.make_compute_tree(fleet.node_root('cmp'))
        keyless = {'DEFAULT': {'rpc_signing_key_file': ''}}
        fleet.start_conductor(sections=keyless)
        fleet.start_agent('cmp', dict(keyless, agent={'drivers': 'nova'}))
        fleet.wait_for_agents([fleet.host('cmp')])
        backup, proc = fleet.manage_json('backup', 'create', '--wait')
        self.assertEqual('SUCCEEDED', backup['status'], proc.stderr)
        self.assertIn('key derived from the transport_url', proc.stderr)
        self.assertEqual(['available'],
                         [a['status'] for a in backup['artifacts']])
