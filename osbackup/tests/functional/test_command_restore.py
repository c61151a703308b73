"""``restore create`` of command artifacts, end to end on a real fleet.

One agent backs up the definitions of a private RabbitMQ node (never the
machine's shared broker, which only carries the fleet's RPC) and the OVN
northbound database of a private ovsdb-server; both are changed, and an
orchestrated ``restore create --wait`` must bring them back: RabbitMQ
with ``import_definitions``, OVN with ``ovsdb-client restore``.
"""

import json
import os
import shlex
import unittest

from osbackup.tests.functional import fleet as fleet_mod
from osbackup.tests.functional import ovsdb_server
from osbackup.tests.functional import rabbitmq_server


class CommandRestoreTest(fleet_mod.RestoreCommand, fleet_mod.FleetTestCase):

    rabbit = None
    nb = None

    @classmethod
    def build_fleet(cls, fleet):
        why = rabbitmq_server.available()
        if why:
            raise unittest.SkipTest('SKIPPED, NOT TESTED: needs a private '
                                    'RabbitMQ node: %s' % why)
        root = fleet.node_root('ctl')
        os.makedirs(os.path.join(root, 'var/lib/rabbitmq'))
        cls.nb = ovsdb_server.OvsdbServer(
            fleet.dir, os.path.join(root, 'var/lib/ovn/ovnnb_db.db'))
        cls.nb.create()
        cls.nb.start()
        cls.rabbit = rabbitmq_server.PrivateBroker(
            os.path.join(fleet.dir, 'rabbit'))
        cls.rabbit.start()
        fleet.start_conductor()
        ctl = fleet.standin_sections('ctl', {})
        ctl['agent'] = {'drivers': 'rabbitmq,ovn'}
        ctl['rabbitmq'] = {'ctl_command': 'env HOME=%s %s -n %s' % (
            shlex.quote(cls.rabbit.env['HOME']),
            os.path.join(rabbitmq_server.RABBIT_BIN, 'rabbitmqctl'),
            cls.rabbit.node)}
        ctl['ovn'] = {'nb_connection': cls.nb.connection,
                      'sb_connection': '',
                      'ovsdb_client': cls.nb.tools['ovsdb-client'],
                      'ovsdb_tool': cls.nb.tools['ovsdb-tool']}
        fleet.start_agent('ctl', ctl)
        fleet.wait_for_agents([fleet.host('ctl')])

    @classmethod
    def cleanup_fleet(cls):
        if cls.nb is not None:
            cls.nb.stop()
        if cls.rabbit is not None:
            cls.rabbit.stop()
        super().cleanup_fleet()

    def users(self):
        out = self.rabbit.ctl('list_users', '--formatter', 'json').stdout
        return sorted(u['user'] for u in json.loads(out))

    def vhosts(self):
        out = self.rabbit.ctl('list_vhosts', '--formatter', 'json').stdout
        return sorted(v['name'] for v in json.loads(out))

    def test_restore_create_imports_definitions_and_restores_ovn(self):
        ctl = self.rabbit.ctl
        ctl('add_vhost', 'openstack')
        ctl('add_user', 'neutron', 's3cret')
        ctl('set_permissions', '-p', 'openstack', 'neutron', '.*', '.*',
            '.*')
        self.nb.nbctl('ls-add', 'net1')
        self.nb.nbctl('lsp-add', 'net1', 'port1')
        switches = self.nb.switches()
        backup, proc = self.fleet.manage_json('backup', 'create', '--wait')
        self.assertEqual('SUCCEEDED', backup['status'], proc.stderr)
        self.assertEqual(
            [('ovn', 'ovn-nb'), ('rabbitmq', 'rabbitmq-definitions')],
            sorted((a['service'], a['name']) for a in backup['artifacts']))

        ctl('delete_user', 'neutron')
        ctl('delete_vhost', 'openstack')
        self.nb.nbctl('ls-del', 'net1')
        self.nb.nbctl('ls-add', 'stray')
        self.assertNotIn('neutron', self.users())

        dry, _proc = self.fleet.manage_json(
            'restore', 'create', str(backup['id']), '--dry-run')
        steps = [(s['phase'], s['action'], s['target'])
                 for s in dry['steps']]
        self.assertIn(('load_db', 'load', 'rabbitmq-definitions'), steps)
        self.assertIn(('load_db', 'load', 'ovn-nb'), steps)
        self.assertEqual(1, sum(a == 'repair' and
                                t.startswith('neutron-ovn-db-sync-util')
                                for _p, a, t in steps))

        restore = self.restore(backup['id'])
        done = [(s['action'], s['target']) for s in restore['steps']
                if s['status'] == 'SUCCEEDED']
        for name in ('rabbitmq-definitions', 'ovn-nb'):
            self.assertIn(('verify', name), done)
            self.assertIn(('save', name), done)
            self.assertIn(('load', name), done)
        self.assertIn('neutron', self.users())
        self.assertIn('openstack', self.vhosts())
        self.assertEqual(0, ctl('authenticate_user', 'neutron', 's3cret',
                                check=False).returncode)
        self.assertEqual(switches, self.nb.switches())
