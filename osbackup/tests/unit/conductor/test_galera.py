"""One backup per Galera cluster, on the member the policy picks."""

from osbackup.conductor import galera
from osbackup.db import api
from osbackup.manage import agents
from osbackup import states
from osbackup.tests import base
from osbackup.tests.unit.conductor import test_backups

UUID = 'c730e498-eee4-11f1-9514-8e7a3697d4c7'
OTHER = 'dc1fc5f3-eee4-11f1-909b-6b5b95f2135b'


def facts(state='Synced', ready=True, connections=5, uuid=UUID):
    return {'cluster_uuid': uuid, 'state': state, 'size': 3, 'seqno': 9,
            'ready': ready, 'primary': True, 'connections': connections,
            'desync': False}


class ChooseTest(base.TestCase):

    def agents(self, **members):
        return {host: {'info': {'galera': f} if f else {}}
                for host, f in members.items()}

    def chosen(self, **members):
        plan = galera.plan(self.cfg.conf, self.agents(**members),
                           sorted(members))
        return {c.chosen or c.reason for c in plan.values()}

    def test_fewest_connections_among_synced(self):
        self.assertEqual({'db2'}, self.chosen(
            db1=facts(connections=9), db2=facts(connections=1),
            db3=facts(state='Donor/Desynced', connections=0)))

    def test_backup_node_when_synced(self):
        self.flags(group='mysql', galera_backup_node='db3')
        self.assertEqual({'db3'}, self.chosen(
            db1=facts(connections=0), db2=facts(), db3=facts(connections=50)))

    def test_backup_node_not_synced_picks_another(self):
        self.flags(group='mysql', galera_backup_node='db3')
        self.assertEqual({'db1'}, self.chosen(
            db1=facts(), db2=facts(ready=False, connections=0),
            db3=facts(state='Joining')))

    def test_avoided_nodes_only_as_last_resort(self):
        self.flags(group='mysql', galera_avoid_nodes=['db1', 'db2'])
        self.assertEqual({'db3'}, self.chosen(
            db1=facts(connections=0), db2=facts(connections=0),
            db3=facts(connections=40)))
        self.assertEqual({'db2'}, self.chosen(
            db1=facts(connections=3), db2=facts(connections=0),
            db3=facts(state='Donor/Desynced')))

    def test_no_usable_member_names_every_node(self):
        (reason,) = self.chosen(db1=facts(state='Donor/Desynced'),
                                db2=facts(state='Joining', ready=False))
        self.assertIn('no member of Galera cluster %s is Synced' % UUID,
                      reason)
        self.assertIn('db1 is Donor/Desynced', reason)
        self.assertIn('db2 is Joining (wsrep_ready=OFF)', reason)

    def test_two_clusters_each_backed_up_once(self):
        plan = galera.plan(self.cfg.conf, self.agents(
            db1=facts(), db2=facts(connections=0), db3=facts(uuid=OTHER),
            ctl=None), ['ctl', 'db1', 'db2', 'db3'])
        self.assertEqual({'db1': 'db2', 'db2': 'db2', 'db3': 'db3'},
                         {h: c.chosen for h, c in plan.items()})


class ClusterBackupTest(base.TestCase):
    """The orchestrator casts one mysql task per cluster."""

    def setUp(self):
        super().setUp()
        self.cat = api.Catalogue('sqlite://')
        self.cat.sync()
        test_backups.wire_conductor(self)
        for host, f in (('db1', facts(connections=4)),
                        ('db2', facts(connections=2)),
                        ('db3', facts(connections=3))):
            self.cat.record_heartbeat(host, '1', {
                'drivers': ['mysql', 'mariabackup', 'nova'],
                'galera': f})

    def tasks(self, backup):
        return {(t['host'], t['service']): t
                for t in self.cat.get_backup(backup['id'])['tasks']}

    def test_one_task_per_cluster_on_the_chosen_member(self):
        backup = self.orch.create([], [])
        sent = sorted((t['host'], t['service']) for t in self.agent_api.sent)
        self.assertEqual([('db1', 'nova'), ('db2', 'mariabackup'),
                          ('db2', 'mysql'), ('db2', 'nova'), ('db3', 'nova')],
                         sent)
        tasks = self.tasks(backup)
        for host in ('db1', 'db3'):
            task = tasks[(host, 'mysql')]
            self.assertEqual(states.SKIPPED, task['status'])
            self.assertIn('backed up once on db2', task['result']['reason'])

    def test_no_synced_member_fails_the_backup_with_the_reason(self):
        for host in ('db1', 'db2', 'db3'):
            self.cat.record_heartbeat(host, '1', {
                'drivers': ['mysql'], 'galera': facts(state='Joining')})
        backup = self.orch.create([], [])
        self.assertEqual([], self.agent_api.sent)
        self.assertEqual(states.FAILED,
                         self.cat.get_backup(backup['id'])['status'])
        for task in self.tasks(backup).values():
            self.assertIn('db1 is Joining', task['error'])


class AgentListTest(base.TestCase):

    def test_members_carry_their_cluster(self):
        row = {'host': 'db1', 'state': 'up', 'version': '1',
               'last_heartbeat': 'now'}
        member = agents._flatten(dict(row, info={'galera': facts()}))
        self.assertEqual({'cluster_uuid': UUID, 'state': 'Synced',
                          'size': 3}, member['galera'])
        self.assertNotIn('galera', agents._flatten(dict(row, info={})))
