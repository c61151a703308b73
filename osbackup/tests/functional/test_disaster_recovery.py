"""The disaster-recovery drill: a lost controller, back from storage alone.

A fleet (conductor, a controller and a compute agent, real RabbitMQ and
MariaDB) takes a full and an incremental backup to encrypted storage.
Then everything but the storage, the configuration and the key files is
lost: the catalogue schema is dropped, every state_path wiped, the
service trees deleted and the service databases and their accounts
dropped. A new conductor on a new, empty catalogue rebuilds it from the
records on storage, and ``restore create ID --wait`` brings back every
file (content, mode, owner, mtime), every table (CHECKSUM TABLE) and every
service account with its grants (SHOW GRANTS) as they were; the compute
node comes back under a new host name (``--map-host OLD=NEW``).
"""

import os
import shutil

from osbackup.tests.functional import fleet as fleet_mod
from osbackup.tests.functional import test_backup
from osbackup.tests.functional import test_restore

CTL_UNITS = {'nova': ['nova-api'], 'keystone': ['keystone-api']}
CMP_UNITS = {'nova': ['nova-compute']}
#: What each node's service trees are; all of them are lost.
TREES = {'ctl': ('etc/nova', 'var/lib/nova', 'var/log/nova', 'etc/keystone',
                 'var/lib/keystone', 'var/log/keystone'),
         'cmp': ('etc/nova', 'var/lib/nova', 'var/log/nova')}
#: What the nova driver does not back up: instance disks.
EXCLUDED = ('var/lib/nova/instances',)


class DisasterRecoveryTest(fleet_mod.RestoreCommand,
                           fleet_mod.FleetTestCase):

    @classmethod
    def build_fleet(cls, fleet):
        fleet_mod.make_controller_tree(fleet.node_root('ctl'))
        fleet_mod.make_compute_tree(fleet.node_root('cmp'))
        # Owners are restored by name: a file of another user.
        os.chown(os.path.join(fleet.node_root('ctl'),
                              'etc/keystone/keystone.conf'), 65534, 65534)
        cls.nova_db = fleet.create_database(
            'nova', {'instances': 300, 'services': 10})
        cls.keystone_db = fleet.create_database('keystone', {'project': 20})
        # The services' accounts, a role among their grants.
        reader = fleet.create_account('reader', grants=[
            'SELECT ON %s.*' % cls.nova_db])
        fleet.create_account('nova', '%', grants=[
            'ALL PRIVILEGES ON %s.*' % cls.nova_db, reader])
        fleet_mod.sql("SET DEFAULT ROLE %s FOR 'ft%s_nova'@'%%'"
                      % (reader, fleet.id))
        fleet.create_account('keystone', 'localhost', grants=[
            'SELECT, INSERT, UPDATE, DELETE ON %s.*' % cls.keystone_db])
        # Kept off the controllers, with the configuration.
        keys = {}
        for name in ('storage.key', 'record.key'):
            keys[name] = os.path.join(fleet.dir, name)
            fleet_mod.write_file(keys[name], os.urandom(32).hex(), 0o600)
        storage = {'encryption_key_file': keys['storage.key'],
                   'record_key_file': keys['record.key']}
        cls.conductor_sections = {
            'storage': storage,
            'nova': {'databases': cls.nova_db},
            'keystone': {'databases': cls.keystone_db}}
        fleet.start_conductor(sections=cls.conductor_sections)
        ctl = fleet.standin_sections('ctl', CTL_UNITS)
        ctl['mysql'] = {'databases': '%s,%s' % (cls.nova_db,
                                                cls.keystone_db)}
        ctl['agent'] = {'drivers': 'mysql,nova,keystone'}
        ctl['storage'] = storage
        cmp = fleet.standin_sections('cmp', CMP_UNITS)
        cmp['agent'] = {'drivers': 'nova'}
        cmp['storage'] = storage
        # The compute node's replacement, under another name.
        cmp2 = fleet.standin_sections('cmp2', CMP_UNITS)
        cmp2['agent'] = {'drivers': 'nova'}
        cmp2['storage'] = storage
        cls.agent_sections = {'ctl': ctl, 'cmp': cmp, 'cmp2': cmp2}
        for role in ('ctl', 'cmp'):
            fleet.start_agent(role, ctl if role == 'ctl' else cmp)
        for role, units in (('ctl', CTL_UNITS), ('cmp', CMP_UNITS)):
            for names in units.values():
                for unit in names:
                    fleet.unit(role, 'start', unit)
        cls.hosts = [fleet.host('ctl'), fleet.host('cmp')]
        fleet.wait_for_agents(cls.hosts)

    def backup(self, *argv):
        backup, proc = self.fleet.manage_json('backup', 'create', '--wait',
                                              *argv)
        self.assertEqual('SUCCEEDED', backup['status'], proc.stderr)
        return backup

    def lose_everything(self):
        """The controller is gone: all but storage, config and keys."""
        fleet = self.fleet
        for name in ('conductor', 'ctl', 'cmp'):
            fleet.stop(name)
        fleet.unit('cmp', 'stop', CMP_UNITS['nova'][0])
        fleet_mod.sql('DROP DATABASE %s' % fleet.catalogue_db)
        fleet_mod.sql('CREATE DATABASE %s' % fleet.catalogue_db)
        shutil.rmtree(os.path.join(fleet.dir, 'state'))
        for tree in TREES['ctl']:
            shutil.rmtree(os.path.join(fleet.node_root('ctl'), tree))
        # The compute node is replaced by cmp2: installed, no service tree.
        shutil.rmtree(fleet.node_root('cmp'))
        for top in ('etc', 'var/lib', 'var/log'):
            os.makedirs(os.path.join(fleet.node_root('cmp2'), top))
        for db in (self.nova_db, self.keystone_db):
            fleet_mod.sql('DROP DATABASE %s' % db)
        for account in fleet.accounts:
            fleet_mod.sql('DROP %s %s' % ('USER' if '@' in account
                                          else 'ROLE', account))

    def assert_owners_equal(self, snap, role):
        for dirpath, dirs, files in os.walk(snap):
            if os.path.relpath(dirpath, snap) in EXCLUDED:
                dirs[:] = []
                continue
            for name in files:
                a = os.path.join(dirpath, name)
                b = os.path.join(self.fleet.node_root(role),
                                 os.path.relpath(a, snap))
                self.assertEqual(
                    (os.lstat(a).st_uid, os.lstat(a).st_gid),
                    (os.lstat(b).st_uid, os.lstat(b).st_gid), b)

    def test_drill(self):
        fleet = self.fleet
        full = self.backup()
        fleet_mod.write_file(os.path.join(fleet.node_root('ctl'),
                                          'etc/nova/added.conf'), 'new\n')
        fleet_mod.sql("INSERT INTO services VALUES (99, 'late', X'00')",
                      self.nova_db)
        incr = self.backup()
        levels = {(a['host'], a['name']): a['level']
                  for a in incr['artifacts']}
        self.assertEqual('incremental', levels[(fleet.host('ctl'), 'nova')])
        snaps = {r: test_restore.snapshot(fleet, r, 'before')
                 for r in ('ctl', 'cmp')}
        sums = {db: fleet.checksums(db)
                for db in (self.nova_db, self.keystone_db)}
        grants = {a: fleet.grants(a) for a in fleet.accounts}
        self.assertNotIn(None, grants.values())
        (accounts,) = [a for a in incr['artifacts'] if a['name'] == 'accounts']
        self.assertEqual('accounts', accounts['kind'])
        before, _ = fleet.manage_json('backup', 'list')
        shown = {b: fleet.manage_json('backup', 'show', str(b))[0]
                 for b in (full['id'], incr['id'])}

        self.lose_everything()
        self.assertEqual({None}, {fleet.grants(a) for a in fleet.accounts})

        # From another machine: config, keys and storage are enough.
        conf = fleet.write_conf('conductor', fleet.host('conductor'),
                                self.conductor_sections)
        check, proc = fleet.manage_json('backup', 'check', '--dr')
        self.assertEqual('OK', check['state'], proc.stdout)
        self.assertEqual(
            sorted({(a['host'], a['service']) for a in incr['artifacts']
                    if a['location']}),
            [(i['host'], i['service']) for i in check['items']])
        self.assertEqual({incr['uuid']},
                         {i['backup_uuid'] for i in check['items']})

        # A new machine: same configuration and keys, empty catalogue.
        fleet.manage('db', 'sync', conf=conf)
        dry, _ = fleet.manage_json('catalogue', 'rebuild', '--dry-run')
        self.assertEqual(2, dry['imported'])
        self.assertEqual([], fleet.manage_json('backup', 'list')[0])
        summary, proc = fleet.manage_json('catalogue', 'rebuild')
        self.assertEqual({'imported': 2, 'existing': 0, 'incomplete': [],
                          'rejected': []},
                         {k: summary[k] for k in ('imported', 'existing',
                                                  'incomplete', 'rejected')},
                         proc.stderr)
        again, _ = fleet.manage_json('catalogue', 'rebuild')
        self.assertEqual((0, 2), (again['imported'], again['existing']))

        after, _ = fleet.manage_json('backup', 'list')
        keys = ('id', 'uuid', 'hosts', 'services', 'created_at', 'status',
                'size', 'artifact_count')
        self.assertEqual([{k: b[k] for k in keys} for b in before],
                         [{k: b[k] for k in keys} for b in after])
        for backup_id, old in shown.items():
            new, _ = fleet.manage_json('backup', 'show', str(backup_id))
            self.assertEqual(
                [(a['host'], a['name'], a['sha256'], a['level'])
                 for a in old['artifacts']],
                [(a['host'], a['name'], a['sha256'], a['level'])
                 for a in new['artifacts']])

        fleet.start('conductor', 'osbackup.cmd.conductor', conf)
        for role in ('ctl', 'cmp2'):
            fleet.start_agent(role, self.agent_sections[role])
        fleet.wait_for_agents([fleet.host('ctl'), fleet.host('cmp2')])
        restore = self.restore(incr['id'], '--map-host', '%s=%s' % (
            fleet.host('cmp'), fleet.host('cmp2')))
        self.assertEqual(incr['id'], restore['backup_id'])
        self.assertIn(fleet.host('cmp2'),
                      {s['host'] for s in restore['steps']})

        for role, now in (('ctl', 'ctl'), ('cmp', 'cmp2')):
            for tree in TREES[role]:
                src = os.path.join(snaps[role], tree)
                dst = os.path.join(fleet.node_root(now), tree)
                skip = [os.path.relpath(e, tree) for e in EXCLUDED
                        if e.startswith(tree + '/')]
                test_backup.assert_same_tree(self, src, dst, skip)
                test_backup.assert_same_tree(self, dst, src)
            self.assert_owners_equal(snaps[role], now)
        for db, tables in sums.items():
            self.assertEqual(tables, fleet.checksums(db))
        # The accounts came back before the databases, grants and all.
        self.assertEqual(grants, {a: fleet.grants(a) for a in fleet.accounts})
        loads = [s['target'] for s in restore['steps']
                 if s['action'] == 'load']
        self.assertEqual('accounts', loads[0])
        # The next backup does not touch the imported ones' objects.
        later = self.backup('--service', 'keystone')
        self.assertGreater(later['id'], incr['id'])
        stored = [a['location'] for a in later['artifacts'] if a['location']]
        self.assertTrue(stored)
        for location in stored:
            self.assertIn('/%s/' % later['uuid'], location)
