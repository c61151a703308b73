"""RabbitMQ definitions exported and imported on a private node.

Never the machine's shared broker: the test starts its own node
(rabbitmq_server.PrivateBroker) and points [rabbitmq] ctl_command at it.
"""

import json
import os
import shlex
import tempfile

from oslo_config import fixture as config_fixture
import testtools

from osbackup.drivers import base
from osbackup.drivers import rabbitmq
from osbackup import exception
from osbackup.storage import local
from osbackup.tests import base as test_base
from osbackup.tests.functional import rabbitmq_server


class RabbitMQDefinitionsTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        why = rabbitmq_server.available()
        if why:
            self.skipTest('needs a private RabbitMQ node: %s' % why)
        top = tempfile.mkdtemp(prefix='osbackup-rabbit-')
        self.rabbit = rabbitmq_server.PrivateBroker(os.path.join(top, 'n'))
        self.addCleanup(self.rabbit.stop)
        self.rabbit.start()
        conf = self.useFixture(config_fixture.Config(test_base.CONF))
        ctl = 'env HOME=%s %s -n %s' % (
            shlex.quote(self.rabbit.env['HOME']),
            os.path.join(rabbitmq_server.RABBIT_BIN, 'rabbitmqctl'),
            self.rabbit.node)
        conf.config(group='rabbitmq', ctl_command=ctl)
        conf.config(state_path=os.path.join(top, 'state'))
        self.root = os.path.join(top, 'root')
        conf.config(group='agent', root_path=self.root)
        os.makedirs(os.path.join(self.root, 'var/lib/rabbitmq'))
        self.storage = local.LocalStorage(test_base.CONF,
                                          path=os.path.join(top, 'store'))
        self.ctx = base.TaskContext(task_id='t', backup_id='1', host='ctl',
                                    service='rabbitmq', storage=self.storage)
        self.driver = rabbitmq.RabbitMQDriver(test_base.CONF)

    def names(self, what):
        out = self.rabbit.ctl('list_%s' % what, '--formatter', 'json').stdout
        # list_users names its column 'user', list_vhosts 'name'.
        return sorted(x.get('user', x.get('name')) for x in json.loads(out))

    def test_export_then_import_brings_users_vhosts_and_policies_back(self):
        ctl = self.rabbit.ctl
        ctl('add_vhost', 'openstack')
        ctl('add_user', 'nova', 's3cret')
        ctl('set_permissions', '-p', 'openstack', 'nova', '.*', '.*', '.*')
        ctl('set_policy', '-p', 'openstack', 'ha-all', '^', '{"max-length":9}')
        self.assertTrue(self.driver.is_present())
        os.rmdir(os.path.join(self.root, 'var/lib/rabbitmq'))
        self.assertFalse(self.driver.is_present())
        [art] = self.driver.backup(self.ctx)
        self.assertEqual('command', art.kind)
        with self.storage.open_reader(art.location) as f:
            exported = json.load(f)
        self.assertIn('nova', [u['name'] for u in exported['users']])
        self.assertEqual(1, sum(u['name'] == 'nova' and
                                bool(u['password_hash'])
                                for u in exported['users']))
        ctl('delete_user', 'nova')
        ctl('delete_vhost', 'openstack')
        self.assertNotIn('nova', self.names('users'))

        self.driver.import_definitions(self.ctx, art.location, art.sha256)
        self.assertIn('nova', self.names('users'))
        self.assertIn('openstack', self.names('vhosts'))
        policies = json.loads(ctl('list_policies', '-p', 'openstack',
                                  '--formatter', 'json').stdout)
        self.assertEqual(['ha-all'], [p['name'] for p in policies])
        # The password hash came back too: the old password works.
        self.assertEqual(0, ctl('authenticate_user', 'nova', 's3cret',
                                check=False).returncode)

    def test_corrupt_artifact_imports_nothing(self):
        [art] = self.driver.backup(self.ctx)
        exc = self.assertRaises(exception.OsbackupError,
                                self.driver.import_definitions, self.ctx,
                                art.location, '0' * 64)
        self.assertIn('sha256 mismatch', str(exc))

    def test_an_unreachable_node_is_one_clear_error(self):
        self.rabbit.stop_app()
        self.useFixture(config_fixture.Config(test_base.CONF)).config(
            group='rabbitmq', command_timeout=60)
        exc = self.assertRaises(exception.OsbackupError, self.driver.backup,
                                self.ctx)
        self.assertIn('export_definitions', str(exc))
