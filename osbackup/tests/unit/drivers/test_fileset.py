"""File-set drivers: full and incremental backups against kept manifests."""

import os

from osbackup.drivers import base as driver_base
from osbackup.drivers import nova
from osbackup.drivers import swift
from osbackup.storage import local
from osbackup.tests import base


class FileSetDriverTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.root = os.path.join(self.state_dir, 'root')
        self.flags(root_path=self.root, group='agent')
        for rel, data in (('etc/nova/nova.conf', b'[DEFAULT]\n'),
                          ('var/lib/nova/keys', b'k' * 5000),
                          ('etc/swift/object.ring.gz', b'ring')):
            path = os.path.join(self.root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'wb') as f:
                f.write(data)
        self.storage = local.LocalStorage(
            self.cfg.conf, path=os.path.join(self.state_dir, 'store'))
        self.driver = nova.NovaDriver(self.cfg.conf)

    def backup(self, backup_id, base=None, driver=None):
        params = {'base': base} if base else {}
        ctx = self.ctx = driver_base.TaskContext(
            task_id='t%s' % backup_id, backup_id=str(backup_id), host='h',
            service='nova', storage=self.storage, params=params)
        (art,) = (driver or self.driver).backup(ctx)
        return art

    def test_backup_reports_where_its_time_went(self):
        self.backup(1)
        # The values are the machine's; only their presence is checked.
        self.assertEqual({'read', 'hash', 'compress', 'handoff', 'write',
                          'stream_hash', 'fsync'}, set(self.ctx.split))
        for stage, seconds in self.ctx.split.items():
            self.assertIsInstance(seconds, float, stage)
            self.assertGreaterEqual(seconds, 0.0, stage)

    def test_full_then_incremental_on_the_named_base(self):
        full = self.backup(1)
        self.assertEqual(('full', 0), (full.meta['level'],
                                       full.meta['depth']))
        self.assertEqual(2, full.meta['stored_files'])
        inc = self.backup(2, {'backup_id': 1, 'sha256': full.sha256,
                              'depth': 0})
        self.assertEqual(('incremental', '1', 1),
                         (inc.meta['level'], inc.meta['base'],
                          inc.meta['depth']))
        self.assertEqual((2, 0, 0), (inc.meta['files'],
                                     inc.meta['stored_files'],
                                     inc.meta['stored_bytes']))
        self.assertLess(inc.size, full.size)

    def test_unknown_base_gives_a_full_backup(self):
        full = self.backup(1)
        # The conductor names a base this agent has no manifest of (say,
        # the agent's last backup was never recorded): full, not a guess.
        for named in ({'backup_id': 5, 'sha256': full.sha256},
                      {'backup_id': 1, 'sha256': 'f' * 64}):
            art = self.backup(2, named)
            self.assertEqual('full', art.meta['level'])
            self.assertEqual(2, art.meta['stored_files'])

    def test_lost_manifest_gives_a_full_backup(self):
        full = self.backup(1)
        os.unlink(os.path.join(self.state_dir, 'agent', 'manifests',
                               'nova.json'))
        art = self.backup(2, {'backup_id': 1, 'sha256': full.sha256})
        self.assertEqual('full', art.meta['level'])

    def test_swift_is_never_incremental(self):
        driver = swift.SwiftDriver(self.cfg.conf)
        full = self.backup(1, driver=driver)
        art = self.backup(2, {'backup_id': 1, 'sha256': full.sha256},
                          driver=driver)
        self.assertEqual('full', art.meta['level'])
        self.assertFalse(os.path.exists(os.path.join(
            self.state_dir, 'agent', 'manifests', 'swift.json')))

    def test_base_missing_from_storage_gives_a_full_backup(self):
        full = self.backup(1)
        self.storage.delete(full.location)
        ctx_base = {'backup_id': 1, 'sha256': full.sha256,
                    'location': full.location}
        art = self.backup(2, ctx_base)
        self.assertEqual('full', art.meta['level'])


class SecretsRecordedTest(base.TestCase):
    """A file-set artifact names the flagged secrets it lacks."""

    def test_missing_secrets_are_recorded_with_their_criticality(self):
        from osbackup import definitions
        from osbackup.drivers import fileset
        root = os.path.join(self.state_dir, 'root')
        self.flags(root_path=root, group='agent')
        os.makedirs(os.path.join(root, 'etc/octavia'))
        storage = local.LocalStorage(
            self.cfg.conf, path=os.path.join(self.state_dir, 'store'))
        driver = fileset.FileSetDriver(self.cfg.conf,
                                       definitions.builtin()['octavia'])
        ctx = driver_base.TaskContext('t', '1', 'h', 'octavia', storage)
        (art,) = driver.backup(ctx)
        self.assertEqual([{'path': '/etc/octavia/certs', 'critical': True}],
                         art.meta['secrets_missing'])
        os.makedirs(os.path.join(root, 'etc/octavia/certs'))
        ctx = driver_base.TaskContext('t2', '2', 'h', 'octavia', storage)
        (art,) = driver.backup(ctx)
        self.assertEqual([], art.meta['secrets_missing'])
        # A definition without secrets records nothing.
        os.makedirs(os.path.join(root, 'etc/nova'))
        ctx = driver_base.TaskContext('t3', '3', 'h', 'nova', storage)
        (art,) = nova.NovaDriver(self.cfg.conf).backup(ctx)
        self.assertNotIn('secrets_missing', art.meta)
