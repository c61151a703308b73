"""Named storage targets: ``[storage] targets`` and a group per name."""

import os
import uuid

from osbackup import exception
from osbackup import storage as storage_mod
from osbackup.storage import local
from osbackup.storage import s3
from osbackup.storage import ssh
from osbackup.storage import swift
from osbackup.tests import base


class TargetsTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.sections = {}

    def target(self, backend, **options):
        """A named target of ``backend``, as a config file would say."""
        name = 't%s' % uuid.uuid4().hex[:8]
        if backend is not None:
            options['backend'] = backend
        self.sections[name] = options
        path = os.path.join(self.state_dir, 'targets.conf')
        with open(path, 'w') as f:
            f.write('[storage]\ntargets = %s\n' % ','.join(self.sections))
            for section, values in self.sections.items():
                f.write('[%s]\n' % section)
                for key, value in values.items():
                    f.write('%s = %s\n' % (key, value))
        self.cfg.set_config_files([path])
        return name

    def test_single_target_options_still_work(self):
        self.flags(group='storage', local_path=os.path.join(
            self.state_dir, 'backups'))
        storage = storage_mod.get_storage(self.cfg.conf)
        self.assertIsInstance(storage, local.LocalStorage)
        self.assertEqual('local', storage.name)
        self.assertEqual(['local', 's3', 'ssh', 'swift'],
                         storage_mod.target_names(self.cfg.conf))

    def test_named_local_target(self):
        path = os.path.join(self.state_dir, 'dr')
        name = self.target('local', local_path=path)
        storage = storage_mod.get_storage(self.cfg.conf, name)
        self.assertIsInstance(storage, local.LocalStorage)
        self.assertEqual(path, storage.path)
        self.assertEqual(name, storage.name)
        self.assertIn(name, storage_mod.target_names(self.cfg.conf))

    def test_two_named_swift_targets_keep_their_options(self):
        first = self.target('swift', auth_url='http://region-one:5000/v3',
                            user='u1', key='k1', container='one')
        one = storage_mod.get_storage(self.cfg.conf, first)
        second = self.target('swift', auth_url='http://region-two:5000/v3',
                             user='u2', key='k2', container='two',
                             segment_size=2 * 1024 * 1024)
        two = storage_mod.get_storage(self.cfg.conf, second)
        self.assertIsInstance(two, swift.SwiftStorage)
        self.assertEqual(('one', 'two'), (one.container, two.container))
        self.assertEqual('http://region-two:5000/v3', two.options.auth_url)
        self.assertEqual(2 * 1024 * 1024, two.part_size)
        self.assertEqual('swift://two/k', two.location('k'))
        self.assertEqual(second, two.name)

    def test_named_s3_and_ssh_targets(self):
        name = self.target('s3', endpoint_url='http://rgw:8080',
                           bucket='dr-bucket', access_key='a',
                           secret_key='s')
        storage = storage_mod.get_storage(self.cfg.conf, name)
        self.assertIsInstance(storage, s3.S3Storage)
        self.assertEqual('dr-bucket', storage.bucket)
        name = self.target('ssh', destination='backup@vault:/srv/osb')
        storage = storage_mod.get_storage(self.cfg.conf, name)
        self.assertIsInstance(storage, ssh.SSHStorage)
        self.assertEqual(('backup', 'vault', '/srv/osb'),
                         (storage.user, storage.host, storage.path))

    def test_named_target_is_the_default(self):
        name = self.target('local', local_path=os.path.join(self.state_dir,
                                                            'x'))
        self.flags(group='storage', backend=name)
        self.assertEqual(name, storage_mod.get_storage(self.cfg.conf).name)

    def test_target_without_backend(self):
        name = self.target(None)
        error = self.assertRaises(exception.InvalidInput,
                                  storage_mod.get_storage, self.cfg.conf,
                                  name)
        self.assertIn('has no backend', str(error))

    def test_target_named_like_another_group(self):
        self.flags(group='storage', targets=['agent'])
        error = self.assertRaises(exception.InvalidInput,
                                  storage_mod.get_storage, self.cfg.conf,
                                  'agent')
        self.assertIn('[agent]', str(error))

    def test_unknown_name(self):
        error = self.assertRaises(exception.InvalidInput,
                                  storage_mod.get_storage, self.cfg.conf,
                                  'nowhere')
        self.assertIn('nowhere', str(error))
