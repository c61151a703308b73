"""Restore plans computed from a backup record and agent heartbeats."""

from osbackup.conductor import restore_plan
from osbackup.conductor import restore_versions
from osbackup import exception
from osbackup import restore_phases
from osbackup.tests import base


def _art(host, service, name, kind='files', paths=None, status='available'):
    return {'id': hash((host, name)) % 1000, 'host': host,
            'service': service, 'name': name, 'kind': kind,
            'location': '/s/%s/%s' % (host, name), 'sha256': 'a' * 64,
            'size': 1, 'status': status,
            'meta': {'paths': paths or []}}


BACKUP = {'id': 5, 'artifacts': [
    _art('ctl', 'nova', 'nova', paths=['etc/nova', 'var/lib/nova']),
    _art('ctl', 'keystone', 'keystone', paths=['etc/keystone']),
    _art('cmp', 'nova', 'nova', paths=['etc/nova']),
    _art('ctl', 'mysql', 'nova', kind='sql'),
    _art('ctl', 'mysql', 'keystone', kind='sql'),
    _art('ctl', 'mysql', 'osbackup', kind='sql'),
    _art('ctl', 'glance', 'glance', status='skipped'),
]}
AGENTS = {
    'ctl': {'info': {'units': {'nova': ['nova-api', 'nova-conductor'],
                               'keystone': ['apache2']}}},
    'cmp': {'info': {'units': {'nova': ['nova-compute']}}},
}


class RestorePlanTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.flags(connection='mysql+pymysql://u:p@db/osbackup',
                   group='database')

    def test_full_plan_orders_phases_and_skips_catalogue(self):
        plan = restore_plan.build(self.cfg.conf, BACKUP, AGENTS, [], [])
        ctl = plan['hosts']['ctl']
        self.assertEqual(['keystone', 'nova'],
                         sorted(d['database'] for d in ctl['databases']))
        self.assertEqual([{'host': 'ctl', 'target': 'osbackup',
                           'reason': "osbackup's own catalogue is never "
                                     "overwritten by a restore"}],
                         plan['skipped'])
        self.assertEqual(['apache2', 'nova-api', 'nova-conductor'],
                         sorted(ctl['units']))
        self.assertEqual(['nova-compute'], plan['hosts']['cmp']['units'])
        steps = restore_plan.steps(plan)
        phases = [s['phase'] for s in steps if s['action'] != 'skip']
        order = [restore_phases.PHASES.index(p) for p in phases]
        self.assertEqual(sorted(order), order)
        stops = [s for s in steps if s['action'] == 'stop']
        loads = [s for s in steps if s['action'] == 'load']
        self.assertLess(steps.index(stops[-1]), steps.index(loads[0]))
        self.assertIn({'host': 'ctl', 'phase': 'replace',
                       'action': 'replace', 'target': '/etc/nova',
                       'status': 'PLANNED'}, steps)

    def test_service_brings_its_databases_and_stops_everywhere(self):
        plan = restore_plan.build(self.cfg.conf, BACKUP, AGENTS, [],
                                  ['nova'])
        ctl = plan['hosts']['ctl']
        self.assertEqual(['nova'], [d['database'] for d in ctl['databases']])
        self.assertEqual(['nova'], [f['service'] for f in ctl['files']])
        self.assertEqual(['nova-compute'], plan['hosts']['cmp']['units'])
        self.assertNotIn('apache2', ctl['units'])

    def test_keystone_database_stops_keystone_units(self):
        plan = restore_plan.build(self.cfg.conf, BACKUP, AGENTS, ['ctl'],
                                  ['mysql'])
        ctl = plan['hosts']['ctl']
        self.assertEqual([], ctl['files'])
        self.assertEqual(['keystone', 'nova'],
                         sorted(d['database'] for d in ctl['databases']))
        self.assertEqual(['apache2', 'nova-api', 'nova-conductor'],
                         sorted(ctl['units']))
        self.assertNotIn('cmp', plan['hosts'])

    def test_unknown_selection_is_refused(self):
        self.assertRaises(exception.InvalidInput, restore_plan.build,
                          self.cfg.conf, BACKUP, AGENTS, ['nohost'], [])
        self.assertRaises(exception.InvalidInput, restore_plan.build,
                          self.cfg.conf, BACKUP, AGENTS, [], ['glance'])
        err = self.assertRaises(exception.InvalidInput, restore_plan.build,
                                self.cfg.conf, BACKUP, AGENTS, ['cmp'],
                                ['keystone'])
        self.assertIn('Nothing to restore', err.message)


class MapHostTest(base.TestCase):
    """``restore create --map-host OLD=NEW``: a node back under a new name."""

    AGENTS = dict(AGENTS, cmp2={'info': {'units': {
        'nova': ['nova-compute-new']}}})

    def test_old_hosts_artifacts_go_to_the_new_agent(self):
        backup = restore_plan.map_hosts(BACKUP, {'cmp': 'cmp2'}, self.AGENTS)
        plan = restore_plan.build(self.cfg.conf, backup, self.AGENTS,
                                  [], ['nova'])
        self.assertEqual(['cmp2', 'ctl'], sorted(plan['hosts']))
        self.assertEqual(['/etc/nova'],
                         plan['hosts']['cmp2']['files'][0]['paths'])
        self.assertEqual('/s/cmp/nova', plan['hosts']['cmp2']['files'][0]
                         ['artifact']['location'])
        # The new node's own units are stopped and started.
        self.assertEqual(['nova-compute-new'],
                         plan['hosts']['cmp2']['units'])
        self.assertEqual('cmp', BACKUP['artifacts'][2]['host'])

    def test_refuses_unknown_old_or_new_and_collisions(self):
        for mapping, why in (({'nope': 'cmp2'}, 'has nothing of host'),
                             ({'cmp': 'ghost'}, 'no agent'),
                             ({'cmp': 'ctl'}, 'two hosts'),
                             ({'cmp': 'cmp2', 'ctl': 'cmp2'}, 'two hosts')):
            exc = self.assertRaises(exception.InvalidInput,
                                    restore_plan.map_hosts, BACKUP, mapping,
                                    self.AGENTS)
            self.assertIn(why, exc.message)

    def test_swapping_two_hosts_is_allowed(self):
        backup = restore_plan.map_hosts(BACKUP, {'cmp': 'ctl', 'ctl': 'cmp'},
                                        AGENTS)
        self.assertEqual({('cmp', 'keystone'), ('ctl', 'nova'),
                          ('cmp', 'nova'), ('cmp', 'mysql'),
                          ('cmp', 'glance')},
                         {(a['host'], a['service'])
                          for a in backup['artifacts']})


class RestoreOrderTest(base.TestCase):
    """Units start in their services' dependency order."""

    BACKUP = {'id': 9, 'artifacts': [
        _art('ctl', 'nova', 'nova', paths=['etc/nova']),
        _art('ctl', 'heat', 'heat', paths=['etc/heat']),
        _art('ctl', 'keystone', 'keystone', paths=['etc/keystone']),
        _art('ctl', 'mariabackup', 'mariabackup', kind='physical'),
    ]}
    AGENTS = {'ctl': {'info': {'units': {
        'nova': ['nova-api'], 'heat': ['heat-engine'],
        'keystone': ['apache2'], 'mariabackup': ['mariadb']}}}}

    def test_database_then_keystone_then_the_services(self):
        plan = restore_plan.build(self.cfg.conf, self.BACKUP, self.AGENTS,
                                  [], ['mariabackup', 'nova', 'heat',
                                       'keystone'])
        self.assertEqual(['mariabackup', 'keystone', 'heat', 'nova'],
                         plan['order'])
        self.assertEqual(['mariadb', 'apache2', 'heat-engine', 'nova-api'],
                         plan['hosts']['ctl']['units'])
        starts = [s['target'] for s in restore_plan.steps(plan)
                  if s['action'] == 'start']
        self.assertEqual(['mariadb', 'apache2', 'heat-engine', 'nova-api'],
                         starts)


class CommandArtifactTest(base.TestCase):

    BACKUP = {'id': 3, 'artifacts': [
        _art('ctl', 'nova', 'nova', paths=['etc/nova']),
        _art('ctl', 'rabbitmq', 'rabbitmq-definitions', kind='command'),
        _art('ctl', 'ovn', 'ovn-nb', kind='command'),
        _art('ctl', 'ovn', 'ovn-sb', kind='command')]}
    AGENTS = {'ctl': {'info': {'units': {
        'nova': ['nova-api'], 'rabbitmq': ['rabbitmq-server'],
        'ovn': ['ovn-central']}}}}

    def test_command_artifacts_load_in_load_db_with_their_servers_up(self):
        plan = restore_plan.build(self.cfg.conf, self.BACKUP, self.AGENTS,
                                  [], [])
        ctl = plan['hosts']['ctl']
        self.assertEqual([], plan['skipped'])
        self.assertEqual(
            [('rabbitmq', 'rabbitmq-definitions', False),
             ('ovn', 'ovn-nb', False), ('ovn', 'ovn-sb', False)],
            sorted(((c['service'], c['artifact']['name'], c['force'])
                    for c in ctl['commands']),
                   key=lambda c: (c[0] != 'rabbitmq', c[1])))
        # The broker and ovsdb-server must serve to take the load.
        self.assertEqual(['nova-api'], ctl['units'])
        self.assertTrue(restore_plan.has_work(ctl, 'load_db'))
        steps = [(s['phase'], s['action'], s['target'])
                 for s in restore_plan.steps(plan)]
        for name in ('rabbitmq-definitions', 'ovn-nb', 'ovn-sb'):
            self.assertIn(('prepare', 'verify', name), steps)
            self.assertIn(('load_db', 'load', name), steps)

    def test_the_ovn_sync_repair_is_named_in_the_plan(self):
        plan = restore_plan.build(self.cfg.conf, self.BACKUP, self.AGENTS,
                                  [], ['ovn'], force=True)
        self.assertTrue(all(c['force'] for c in
                            plan['hosts']['ctl']['commands']))
        [repair] = [s for s in restore_plan.steps(plan)
                    if s['action'] == 'repair']
        self.assertTrue(repair['target'].startswith(
            'neutron-ovn-db-sync-util '))
        self.assertIn('repair', repair['target'])
        self.assertIn("neutron's database disagree", repair['error'])
        self.assertEqual(['ovn'], [c['service'] for c in
                                   plan['hosts']['ctl']['commands']][:1])

    def test_a_command_artifact_alone_is_something_to_restore(self):
        plan = restore_plan.build(self.cfg.conf, self.BACKUP, self.AGENTS,
                                  [], ['rabbitmq'])
        self.assertEqual(['rabbitmq-definitions'],
                         [c['artifact']['name'] for c in
                          plan['hosts']['ctl']['commands']])
        self.assertEqual([], plan['repairs'])
        self.assertFalse(restore_plan.has_work(plan['hosts']['ctl'],
                                               'stop'))


class BinlogArtifactsTest(base.TestCase):

    def test_binlog_segments_are_not_restored_as_file_sets(self):
        backup = {'id': 9, 'artifacts': [
            _art('db', 'binlog', 'binlog.000001-0', kind='binlog')]}
        self.assertRaises(exception.InvalidInput, restore_plan.build,
                          self.cfg.conf, backup, {}, [], [])
        backup['artifacts'].append(_art('db', 'mysql', 'nova', kind='sql'))
        plan = restore_plan.build(self.cfg.conf, backup, {}, [], [])
        self.assertEqual([], plan['hosts']['db']['files'])
        self.assertIn('restore create --to-time',
                      plan['skipped'][0]['reason'])


class AccountsPlanTest(base.TestCase):
    """The accounts artifact: loaded first, with the whole backup."""

    BACKUP = dict(BACKUP, artifacts=BACKUP['artifacts'] + [
        _art('ctl', 'mysql', 'accounts', kind='accounts')])

    def test_loaded_before_the_databases(self):
        plan = restore_plan.build(self.cfg.conf, self.BACKUP, AGENTS, [], [])
        ctl = plan['hosts']['ctl']
        self.assertEqual('/s/ctl/accounts',
                         ctl['accounts']['artifact']['location'])
        self.assertNotIn('accounts', [d['database']
                                      for d in ctl['databases']])
        loads = [(s['phase'], s['target']) for s in restore_plan.steps(plan)
                 if s['host'] == 'ctl' and s['action'] in ('load', 'verify')
                 and s['target'] in ('accounts', 'nova', 'keystone')]
        # (The file sets named nova and keystone are verified first.)
        self.assertEqual([('prepare', 'accounts'), ('prepare', 'keystone'),
                          ('prepare', 'nova'), ('load_db', 'accounts'),
                          ('load_db', 'keystone'), ('load_db', 'nova')],
                         loads[-6:])
        self.assertTrue(restore_plan.has_work(
            {'files': [], 'databases': [], 'units': [],
             'accounts': ctl['accounts']}, 'load_db'))

    def test_with_mysql_only_and_skippable(self):
        plan = restore_plan.build(self.cfg.conf, self.BACKUP, AGENTS, [],
                                  ['mysql'])
        self.assertIn('accounts', plan['hosts']['ctl'])
        plan = restore_plan.build(self.cfg.conf, self.BACKUP, AGENTS, [],
                                  ['nova'])
        self.assertNotIn('accounts', plan['hosts']['ctl'])
        self.assertEqual([], plan['skipped'])
        plan = restore_plan.build(self.cfg.conf, self.BACKUP, AGENTS, [], [],
                                  skip_accounts=True)
        self.assertNotIn('accounts', plan['hosts']['ctl'])
        self.assertIn({'host': 'ctl', 'target': 'accounts',
                       'reason': 'accounts and grants left as they are '
                                 '(--skip-accounts)'}, plan['skipped'])
        skips = [s for s in restore_plan.steps(plan)
                 if s['action'] == 'skip' and s['target'] == 'accounts']
        self.assertEqual(1, len(skips))

    def test_alone_it_is_something_to_restore(self):
        backup = {'id': 6, 'artifacts': [
            _art('ctl', 'mysql', 'accounts', kind='accounts')]}
        plan = restore_plan.build(self.cfg.conf, backup, AGENTS, [], [])
        self.assertIn('accounts', plan['hosts']['ctl'])
        self.assertRaises(exception.InvalidInput, restore_plan.build,
                          self.cfg.conf, backup, AGENTS, [], [],
                          skip_accounts=True)


class VersionDifferencesTest(base.TestCase):
    """What --dry-run names between the backup and the hosts."""

    def test_osbackup_and_package_versions(self):
        nova = _art('ctl', 'nova', 'nova', paths=['etc/nova'])
        nova['meta'].update(osbackup_version='1.0',
                            package={'name': 'nova-common', 'version': '30'})
        cmp_nova = _art('cmp', 'nova', 'nova', paths=['etc/nova'])
        cmp_nova['meta'].update(osbackup_version='1.1',
                                package={'name': 'nova-common',
                                         'version': '31'})
        db = _art('ctl', 'mysql', 'nova', kind='sql')
        db['meta'].update(osbackup_version='1.0')
        backup = {'id': 7, 'artifacts': [nova, cmp_nova, db]}
        agents = {
            'ctl': dict(AGENTS['ctl'], version='1.1'),
            'cmp': {'version': '1.1', 'info': dict(
                AGENTS['cmp']['info'], packages={'nova-common': '31'})}}
        agents['ctl']['info'] = dict(agents['ctl']['info'],
                                     packages={'nova-common': '31'})
        plan = restore_plan.build(self.cfg.conf, backup, agents, [], [])
        self.assertEqual([
            {'host': 'ctl', 'what': 'osbackup', 'backup': '1.0',
             'running': '1.1', 'artifacts': ['nova', 'nova']},
            {'host': 'ctl', 'what': 'nova-common', 'backup': '30',
             'running': '31', 'artifacts': ['nova']}], plan['versions'])
        self.assertEqual('ctl: nova-common 30 in the backup (nova), 31 '
                         'running', restore_versions.describe(
                             plan['versions'][1]))

    def test_nothing_known_is_no_difference(self):
        plan = restore_plan.build(self.cfg.conf, BACKUP, AGENTS, [], [])
        self.assertEqual([], plan['versions'])
