"""A dump older than its live database's schema: refused, unless forced.

On the real MariaDB, a scratch database ``osbackup_ft_<random>`` with an
``alembic_version`` table stands for keystone's; keystone's migrations
(two revisions, a1 then b2) are files under the node root where the
package keeps them. The database is migrated to b2 after the backup: the
restore of the a1 dump is refused in its prepare phase, with one line
naming both revisions, before anything changed; ``--force`` loads it.
"""

import os
import uuid

from osbackup.definitions import keystone
from osbackup.tests.functional import fleet as fleet_mod
from osbackup.tests.unit import test_schema_versions


class SchemaVersionTest(fleet_mod.RestoreCommand, fleet_mod.FleetTestCase):

    @classmethod
    def build_fleet(cls, fleet):
        cls.db = 'osbackup_ft_%s' % uuid.uuid4().hex[:12]
        fleet_mod.sql('CREATE DATABASE %s' % cls.db)
        fleet.databases.append(cls.db)
        fleet_mod.sql('CREATE TABLE alembic_version (version_num '
                      'VARCHAR(32) NOT NULL PRIMARY KEY)', cls.db)
        fleet_mod.sql('CREATE TABLE project (id INT PRIMARY KEY)', cls.db)
        fleet_mod.sql('INSERT INTO project VALUES (1), (2)', cls.db)
        cls.migrate('a1')
        (versions,) = keystone.DEFINITION.migrations
        versions = os.path.join(fleet.node_root('ctl'), versions.lstrip('/'))
        test_schema_versions.write_migration(versions, 'a1', None)
        test_schema_versions.write_migration(versions, 'b2', 'a1')
        fleet.start_conductor(sections={'keystone': {'databases': cls.db}})
        ctl = fleet.standin_sections('ctl', {})
        ctl['mysql'] = {'databases': cls.db}
        ctl['agent'] = {'drivers': 'mysql'}
        fleet.start_agent('ctl', ctl)
        fleet.wait_for_agents([fleet.host('ctl')])

    @classmethod
    def migrate(cls, revision):
        fleet_mod.sql("DELETE FROM alembic_version; INSERT INTO "
                      "alembic_version VALUES ('%s')" % revision, cls.db)

    def state(self):
        return (fleet_mod.sql('SELECT version_num FROM alembic_version',
                              self.db).split(),
                fleet_mod.sql('SELECT id FROM project ORDER BY id',
                              self.db).split())

    def test_newer_live_schema_refused_then_forced(self):
        fleet = self.fleet
        self.migrate('a1')
        backup, proc = fleet.manage_json('backup', 'create', '--wait')
        self.assertEqual('SUCCEEDED', backup['status'], proc.stderr)
        (dump,) = [a for a in backup['artifacts'] if a['kind'] == 'sql']
        shown, _ = fleet.manage_json('backup', 'show', str(backup['id']))
        (meta,) = [a['meta'] for a in shown['artifacts']
                   if a['name'] == dump['name']]
        self.assertEqual(['a1'], meta['schema_version'])
        self.assertTrue(meta['osbackup_version'])

        # The service was upgraded since: its database is at b2.
        self.migrate('b2')
        fleet_mod.sql('INSERT INTO project VALUES (3)', self.db)
        plan, _ = fleet.manage_json('restore', 'create', str(backup['id']),
                                    '--dry-run')
        self.assertEqual([], plan['versions'])   # same versions here
        restore = self.restore(backup['id'], expect='FAILED')
        (failed,) = [s for s in restore['steps'] if s['status'] == 'FAILED']
        self.assertEqual(('prepare', 'verify', self.db),
                         (failed['phase'], failed['action'],
                          failed['target']))
        self.assertEqual('%s: the dump has schema revision a1, the live '
                         'database b2, newer; refused (restore create '
                         '--force loads it anyway)' % self.db,
                         failed['error'])
        self.assertNotIn('load', {s['action'] for s in restore['steps']})
        self.assertEqual((['b2'], ['1', '2', '3']), self.state())

        # A revision the migrations do not know: no order, refused too.
        self.migrate('zz9')
        restore = self.restore(backup['id'], expect='FAILED')
        (failed,) = [s for s in restore['steps'] if s['status'] == 'FAILED']
        self.assertIn('live database zz9: cannot tell which is newer',
                      failed['error'])

        self.migrate('b2')
        self.restore(backup['id'], '--force')
        self.assertEqual((['a1'], ['1', '2']), self.state())
