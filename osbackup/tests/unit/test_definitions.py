"""Service definitions: one home per service, checked at load."""

import dataclasses
import os

from oslo_config import cfg

from osbackup.conf import services as service_conf
from osbackup import definitions
from osbackup.definitions import base as definition_base
from osbackup.definitions import order
from osbackup.drivers import fileset
from osbackup.tests import base


def _defn(name, paths=(), after=definition_base.AFTER_KEYSTONE, **kw):
    return definition_base.ServiceDefinition(
        name=name, title=name, paths=paths, after=after, **kw)


class ValidateTest(base.TestCase):

    def test_builtin_definitions_load_and_own_distinct_paths(self):
        found = definitions.builtin()
        for name in ('nova', 'glance', 'keystone', 'cinder', 'swift',
                     'mysql', 'mariabackup'):
            self.assertEqual(name, found[name].name)
        claimed = [p for d in found.values() for p in d.claimed_paths()]
        self.assertIn('/etc/nova', claimed)

    def test_path_outside_the_root_is_refused(self):
        for bad in ('etc/nova', '/etc/../root', '/', '/etc/nova/'):
            exc = self.assertRaises(
                ValueError, definitions.validate,
                {'x': _defn('x', paths=(bad,))})
            self.assertIn('x names %r' % bad, str(exc))

    def test_two_definitions_claiming_one_path_are_refused(self):
        exc = self.assertRaises(ValueError, definitions.validate, {
            'a': _defn('a', paths=('/etc/shared',)),
            'b': _defn('b', paths=('/etc/shared',))})
        self.assertEqual('Service definitions a and b all claim '
                         '/etc/shared: a path belongs to one definition',
                         str(exc))

    def test_a_path_inside_another_definitions_path_is_refused(self):
        exc = self.assertRaises(ValueError, definitions.validate, {
            'a': _defn('a', paths=('/etc/a',)),
            'b': _defn('b', paths=('/etc/a/sub',))})
        self.assertIn('a and b all claim /etc/a/sub', str(exc))

    def test_own_optional_subtree_is_no_conflict(self):
        nova = definitions.builtin()['nova']
        definitions.validate({'nova': nova})
        self.assertIn('/var/lib/nova/instances', nova.restorable_paths())

    def test_dependency_cycle_is_refused(self):
        exc = self.assertRaises(ValueError, definitions.validate, {
            'a': _defn('a', after=('b',)), 'b': _defn('b', after=('a',))})
        self.assertIn('cycle', str(exc))


class OrderTest(base.TestCase):

    def test_database_and_bus_first_then_keystone_then_the_rest(self):
        names = order.restore_order(definitions.builtin())
        self.assertLess(names.index('mysql'), names.index('keystone'))
        self.assertLess(names.index('mariabackup'), names.index('keystone'))
        for other in ('nova', 'glance', 'cinder', 'swift'):
            self.assertLess(names.index('keystone'), names.index(other))

    def test_sort_services_puts_unknown_names_last(self):
        self.assertEqual(
            ['mysql', 'keystone', 'nova', 'zzz'],
            order.sort_services(['zzz', 'nova', 'keystone', 'mysql'],
                                definitions.builtin()))


class GeneratedOptionsTest(base.TestCase):

    def test_groups_come_from_the_definitions(self):
        groups = {g.name: [o.name for o in opts]
                  for g, opts in service_conf.list_opts().items()}
        self.assertEqual(['include_logs', 'units', 'databases',
                          'include_instances'], groups['nova'])
        self.assertNotIn('mysql', groups)
        conf = cfg.ConfigOpts()
        service_conf.register_opts(conf)
        conf([])
        self.assertEqual(['glance'], conf.glance.databases)
        self.assertEqual(['apache2'], conf.keystone.units)

    def test_a_definition_without_a_driver_class_is_served_by_fileset(self):
        nova = definitions.builtin()['nova']
        other = dataclasses.replace(nova, excludes=('/var/lib/nova/tmp',))
        driver = fileset.FileSetDriver(base.CONF, other)
        self.assertEqual('nova', driver.name)
        self.assertEqual(['/var/lib/nova/tmp', '/var/lib/nova/instances'],
                         driver.excludes())


class DocumentedTest(base.TestCase):

    def test_every_definition_and_secret_is_in_the_admin_guide(self):
        path = os.path.join(os.path.dirname(__file__), '..', '..', '..',
                            'doc', 'source', 'admin', 'services.rst')
        with open(path) as f:
            text = f.read()
        for name, definition in definitions.builtin().items():
            self.assertIn('``%s``' % name, text)
            for secret in definition.secrets:
                self.assertIn('``%s``' % secret.path, text)
