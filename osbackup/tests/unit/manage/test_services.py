"""osbackup-manage service list and [agent] extra_filesets."""

from osbackup import definitions
from osbackup.definitions import extra
from osbackup import drivers
from osbackup import exception
from osbackup.manage import services
from osbackup.tests import base

AGENTS = [
    {'host': 'ctl', 'info': {
        'drivers': ['keystone', 'nova', 'octavia', 'haproxy'],
        'services': ['keystone', 'octavia', 'haproxy'],
        'units': {'keystone': ['apache2'], 'octavia': ['octavia-api'],
                  'haproxy': ['haproxy']}}},
    {'host': 'cmp', 'info': {'drivers': ['nova'], 'services': ['nova'],
                             'units': {'nova': ['nova-compute']}}},
]


class ServiceListTest(base.TestCase):

    def entries(self, host=None):
        rows = services.entries(self.cfg.conf, AGENTS,
                                definitions.load(self.cfg.conf), host)
        return {(r['host'], r['service']): r for r in rows}

    def test_every_definition_on_every_host(self):
        rows = self.entries()
        for host in ('ctl', 'cmp'):
            for name in definitions.builtin():
                self.assertIn((host, name), rows)
        octavia = rows[('ctl', 'octavia')]
        self.assertTrue(octavia['present'])
        self.assertEqual(['octavia-api'], octavia['units'])
        self.assertIn('/etc/octavia', octavia['paths'])
        self.assertEqual(['octavia', 'octavia_persistence'],
                         octavia['databases'])
        self.assertEqual(['/etc/octavia/certs'], octavia['secrets'])
        self.assertEqual(['/etc/octavia/certs'], octavia['critical'])
        absent = rows[('cmp', 'octavia')]
        self.assertFalse(absent['present'])
        self.assertFalse(absent['enabled'])
        # Not found there: the units a restore would use by default.
        self.assertIn('octavia-worker', absent['units'])

    def test_host_filter_and_a_driver_only_the_agent_knows(self):
        rows = self.entries('ctl')
        self.assertEqual({'ctl'}, {h for h, _ in rows})
        haproxy = rows[('ctl', 'haproxy')]
        self.assertTrue(haproxy['present'])
        self.assertEqual(['haproxy'], haproxy['units'])
        self.assertEqual([], haproxy['paths'])


class ExtraFilesetsTest(base.TestCase):

    def fileset(self, name, **opts):
        self.flags(group='agent', extra_filesets=[name])
        extra.register_opts(self.cfg.conf)
        self.flags(group=name, **opts)

    def test_an_operator_file_set_is_a_definition_and_a_driver(self):
        self.fileset('haproxy', paths=['/etc/haproxy'],
                     excludes=['/etc/haproxy/errors'], units=['haproxy'],
                     secrets=['/etc/haproxy/certs'])
        found = definitions.load(self.cfg.conf)['haproxy']
        self.assertEqual(('/etc/haproxy',), found.paths)
        self.assertEqual(('haproxy',), found.units)
        self.assertEqual('/etc/haproxy/certs', found.secrets[0].path)
        self.flags(group='agent', drivers=['haproxy', 'nova'])
        loaded = drivers.load(self.cfg.conf)
        self.assertEqual(['haproxy', 'nova'], sorted(loaded))
        self.assertEqual(['/etc/haproxy'], loaded['haproxy'].paths())
        self.assertEqual(['/etc/haproxy/errors'],
                         loaded['haproxy'].excludes())
        self.assertEqual(['haproxy'], loaded['haproxy'].units())
        self.assertEqual(frozenset({'/etc/haproxy'}),
                         loaded['haproxy'].restorable_paths())

    def test_a_path_outside_the_root_is_refused_at_load(self):
        self.fileset('tls', paths=['/etc/ssl/../../x'])
        exc = self.assertRaises(exception.InvalidInput, drivers.load,
                                self.cfg.conf)
        self.assertIn("tls names '/etc/ssl/../../x'", str(exc))

    def test_a_path_another_service_claims_is_refused_at_load(self):
        self.fileset('novacerts', paths=['/etc/nova/ssl'])
        exc = self.assertRaises(exception.InvalidInput, drivers.load,
                                self.cfg.conf)
        self.assertIn('nova and novacerts all claim /etc/nova/ssl',
                      str(exc))

    def test_a_name_of_an_existing_group_is_refused(self):
        self.flags(group='agent', extra_filesets=['storage'])
        exc = self.assertRaises(ValueError, definitions.load, self.cfg.conf)
        self.assertIn('storage is already an option group', str(exc))
        self.flags(group='agent', extra_filesets=['nova'])
        exc = self.assertRaises(ValueError, definitions.load, self.cfg.conf)
        self.assertIn('nova is already', str(exc))

    def test_a_file_set_without_paths_is_refused(self):
        self.fileset('empty')
        exc = self.assertRaises(ValueError, definitions.load, self.cfg.conf)
        self.assertIn('[empty] paths', str(exc))
