"""Backups of real Debian packages' trees restore exactly.

The trees come from the packages themselves (debian_trees): whatever they
ship, links to outside the tree included, must come back as it was, both
through the archive code directly and through a fleet's backup and
restore commands.
"""

import io
import os
import shutil
import tempfile

import fixtures
import testtools

from osbackup import archive
from osbackup import definitions
from osbackup import schema_versions
from osbackup.tests.functional import debian_trees
from osbackup.tests.functional import fleet as fleet_mod
from osbackup.tests.unit import test_archive

# What Debian 12's swift package ships (dpkg-deb -c): the link that made
# every swift backup unrestorable.
SWIFT_LINK = ('etc/swift/backups', '/var/backups/swift')
UNITS = {service: ['%s-standin' % service]
         for service in debian_trees.PACKAGES}
# What a deployment adds to the packaged trees: the files the definitions
# flag as secrets (the packages ship none of them).
SECRETS = {
    'etc/octavia/certs/ca_01.pem': b'-----BEGIN CERTIFICATE-----\n',
    'etc/octavia/certs/private/cakey.pem': b'-----BEGIN PRIVATE KEY-----\n',
    'etc/barbican/barbican.conf': b'[simple_crypto_plugin]\nkek = a2Vr\n',
    'etc/heat/heat.conf': b'[DEFAULT]\nauth_encryption_key = k\n',
    'etc/designate/pools.yaml': b'- name: default\n',
    'var/lib/openstack-dashboard/secret_key': b'django-secret\n',
    'etc/libvirt/secrets/5f0b.base64': b'QVFE\n',
    'etc/libvirt/secrets/5f0b.xml': b'<secret ephemeral="no"/>\n',
    'etc/ceph/ceph.client.cinder.keyring': b'[client.cinder]\n',
    'etc/haproxy/haproxy.cfg': b'frontend api\n',
    'etc/haproxy/certs/api.pem': b'-----BEGIN PRIVATE KEY-----\n',
}


#: The packaged services and the operator-defined file set.
SERVICES = tuple(debian_trees.PACKAGES) + ('haproxy',)


def add_secrets(root: str) -> None:
    for rel, data in SECRETS.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as f:
            f.write(data)
        os.chmod(path, 0o600)


def tree(root: str, path: str) -> dict:
    """Mode, owner, mtime, content or target of everything under ``path``."""
    return test_archive._snapshot(os.path.join(root, path.lstrip('/')))


class PackageTreeArchiveTest(testtools.TestCase):
    """Each service's packaged tree through write and extract, in process."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        debian_trees.fetch()
        cls.root = tempfile.mkdtemp(prefix='osbackup-debian-')
        debian_trees.node_tree(cls.root)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)
        super().tearDownClass()

    def round_trip(self, service):
        paths = debian_trees.service_paths(service, self.root)
        self.assertNotEqual([], paths, '%s ships none of its paths' % service)
        out = io.BytesIO()
        stats = archive.write_archive(out, self.root, paths)
        self.assertEqual([], stats.warnings)
        self.assertEqual([p.lstrip('/') for p in paths],
                         stats.manifest['paths'])
        out.seek(0)
        self.assertEqual(stats.manifest, archive.verify_archive(out))
        staging = self.useFixture(fixtures.TempDir()).path
        targets = {p.lstrip('/'): os.path.join(staging, str(n))
                   for n, p in enumerate(paths)}
        for hash_files in (True, False):
            shutil.rmtree(staging)
            os.mkdir(staging)
            out.seek(0)
            archive.extract_archive(out, targets, hash_files=hash_files)
            for top, dest in targets.items():
                self.assertEqual(tree(self.root, top), tree(dest, ''),
                                 '%s: %s differs' % (service, top))
        return targets

    def test_swift_package_ships_an_absolute_link(self):
        link = os.path.join(self.root, SWIFT_LINK[0])
        self.assertEqual(SWIFT_LINK[1], os.readlink(link))

    def test_swift_tree_restores_its_link_as_a_link(self):
        targets = self.round_trip('swift')
        self.assertEqual(SWIFT_LINK[1], os.readlink(os.path.join(
            targets['etc/swift'], 'backups')))

    def test_every_service_tree_restores_identically(self):
        for service in debian_trees.PACKAGES:
            self.round_trip(service)


class PackageTreeFleetTest(fleet_mod.FleetTestCase):
    """A node made of every service's packages, through the commands."""

    @classmethod
    def build_fleet(cls, fleet):
        debian_trees.node_tree(fleet.node_root('ctl'))
        add_secrets(fleet.node_root('ctl'))
        # The packages' trees alone: no databases to load.
        fleet.start_conductor(sections={s: {'databases': ''}
                                        for s in debian_trees.PACKAGES})
        sections = fleet.standin_sections('ctl', UNITS)
        # A site's own file set beside the packaged services.
        sections['agent'] = {'drivers': ','.join(SERVICES),
                             'extra_filesets': 'haproxy'}
        sections['haproxy'] = {'paths': '/etc/haproxy',
                               'secrets': '/etc/haproxy/certs'}
        # The whole packaged trees: nothing left out to carry across (a
        # carried subtree moves the restored parent's mtime on).
        sections['nova']['include_instances'] = 'True'
        sections['glance']['include_images'] = 'True'
        fleet.start_agent('ctl', sections)
        for names in UNITS.values():
            for unit in names:
                fleet.unit('ctl', 'start', unit)
        fleet.wait_for_agents([fleet.host('ctl')])

    def test_backup_of_package_trees_restores_exactly(self):
        fleet = self.fleet
        root = fleet.node_root('ctl')
        services = [a for s in SERVICES for a in ('--service', s)]
        backup, proc = fleet.manage_json('backup', 'create', '--wait',
                                         '--full', *services)
        self.assertEqual('SUCCEEDED', backup['status'], proc.stderr)
        arts = {a['name']: a for a in backup['artifacts']}
        self.assertEqual(sorted(SERVICES), sorted(arts))
        paths = {s: debian_trees.service_paths(s, root)
                 for s in debian_trees.PACKAGES}
        paths['haproxy'] = ['/etc/haproxy']
        before = {p: tree(root, p) for ps in paths.values() for p in ps}
        # Damage: the packaged link gone, files edited and removed.
        os.unlink(os.path.join(root, SWIFT_LINK[0]))
        with open(os.path.join(root, 'etc/swift/swift.conf'), 'a') as f:
            f.write('damaged = yes\n')
        os.unlink(os.path.join(root, 'etc/keystone/logging.conf'))
        os.rmdir(os.path.join(root, 'var/lib/nova/CA/private'))
        os.chmod(os.path.join(root, 'etc/cinder/rootwrap.conf'), 0o600)
        shutil.rmtree(os.path.join(root, 'etc/octavia/certs'))
        for rel in ('var/lib/openstack-dashboard/secret_key',
                    'etc/libvirt/secrets/5f0b.base64',
                    'etc/ceph/ceph.client.cinder.keyring',
                    'etc/haproxy/certs/api.pem'):
            os.unlink(os.path.join(root, rel))

        restore, proc = fleet.manage_json(
            'restore', 'create', str(backup['id']), '--wait', *services,
            check=False)
        self.assertEqual('SUCCEEDED', restore['status'],
                         '%s\n%s' % (proc.stderr, restore))
        self.assertEqual(SWIFT_LINK[1],
                         os.readlink(os.path.join(root, SWIFT_LINK[0])))
        for art in arts.values():
            # Nothing the restore would refuse, so nothing to warn about.
            self.assertEqual(0, art['meta']['warnings'], art)
        for path, snap in before.items():
            self.assertEqual(snap, tree(root, path), '%s differs' % path)
        for rel, data in SECRETS.items():
            with open(os.path.join(root, rel), 'rb') as f:
                self.assertEqual(data, f.read(), rel)
        for names in UNITS.values():
            for unit in names:
                self.assertEqual(0, fleet.unit('ctl', 'status', unit),
                                 '%s is not running' % unit)
        # Nothing was written through the link on this node.
        self.assertFalse(os.path.lexists(os.path.join(
            root, 'var/backups/swift')))
        self.assertEqual([], [n for n in os.listdir(os.path.join(root, 'etc'))
                              if 'osbackup-restore' in n])

    def test_service_list_shows_what_each_definition_protects(self):
        fleet = self.fleet
        host = fleet.host('ctl')
        rows, _ = fleet.manage_json('service', 'list', '--host', host)
        by_name = {r['service']: r for r in rows}
        self.assertEqual({host}, {r['host'] for r in rows})
        for name in debian_trees.PACKAGES:
            self.assertTrue(by_name[name]['present'], name)
        octavia = by_name['octavia']
        self.assertEqual(['octavia-standin'], octavia['units'])
        self.assertIn('/etc/octavia', octavia['paths'])
        self.assertEqual(['/etc/octavia/certs'], octavia['secrets'])
        # The conductor's [octavia] databases, emptied by build_fleet.
        self.assertEqual([], octavia['databases'])
        # The agent runs no mysql driver here: listed, not present.
        self.assertFalse(by_name['mysql']['present'])
        self.assertTrue(by_name['haproxy']['present'])
        proc = fleet.manage('service', 'list', '--host', 'nowhere',
                            check=False)
        self.assertEqual(2, proc.returncode)
        self.assertIn("No agent on host 'nowhere'", proc.stderr)
        self.assertNotIn('Traceback', proc.stderr)


class MigrationGraphTest(testtools.TestCase):
    """The definitions name the migrations the real packages ship.

    A restore refuses a dump older than the live schema by the services'
    alembic graphs (schema_versions.py): a wrong directory would make it
    "cannot tell which is newer" for every restore of that service.
    """

    #: Services whose packages in this Debian release have no alembic
    #: migrations (no alembic_version table to compare), and why.
    NOT_ALEMBIC = {'heat': 'Debian 12 ships heat 19 (sqlalchemy-migrate); '
                           'alembic from heat 2023.1 on'}

    def test_each_definition_finds_a_graph_in_its_package(self):
        root = self.useFixture(fixtures.TempDir()).path
        debs = debian_trees.fetch(tuple(debian_trees.CODE_PACKAGES.values()))
        for deb in debs.values():
            debian_trees.unpack(deb, root)
        builtin = definitions.builtin()
        for service in sorted(debian_trees.CODE_PACKAGES):
            graph = schema_versions.read_graph(
                [os.path.join(root, d.lstrip('/'))
                 for d in builtin[service].migrations])
            if service in self.NOT_ALEMBIC:
                self.assertEqual({}, graph, service)
                continue
            self.assertTrue(graph, '%s: no migrations under %s' % (
                service, builtin[service].migrations))
            downs = {d for parents in graph.values() for d in parents}
            heads = sorted(r for r in graph if r not in downs)
            first = sorted(r for r, parents in graph.items() if not parents)
            self.assertTrue(heads and first, service)
            # The graph orders a first migration below every head.
            for head in heads:
                self.assertIn(schema_versions.NEWER, [
                    schema_versions.compare(graph, [r], [head])
                    for r in first], '%s: %s' % (service, head))
