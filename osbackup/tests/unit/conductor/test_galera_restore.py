"""Galera restores and recoveries: the plan, its steps, the orchestration."""

from osbackup.conductor import galera_restore
from osbackup.conductor import restore_plan
from osbackup.db import api
from osbackup import exception
from osbackup import restore_phases
from osbackup import states
from osbackup.tests import base
from osbackup.tests.unit.conductor import test_backups

UUID = '39081318-ef16-11f1-a43f-fb0115045bc7'
OTHER = '11111111-ef16-11f1-a43f-fb0115045bc7'
MEMBERS = ('db0', 'db1', 'db2')


def _facts(uuid=UUID, state='Synced', size=3):
    return {'cluster_uuid': uuid, 'state': state, 'size': size,
            'seqno': 10, 'ready': state == 'Synced',
            'primary': state == 'Synced', 'connections': 1}


def _agents(state='Synced', **overrides):
    agents = {h: {'state': states.UP, 'info': {
        'units': {'mariabackup': ['mariadb']}, 'galera': _facts(
            state=state)}} for h in MEMBERS}
    for host, agent in overrides.items():
        agents[host] = agent
    return agents


BACKUP = {'id': 7, 'artifacts': [{
    'id': 1, 'host': 'db1', 'service': 'mariabackup', 'name': 'mariabackup',
    'kind': 'physical', 'location': '/s/db1', 'sha256': 'a' * 64, 'size': 1,
    'status': states.AVAILABLE, 'meta': {
        'datadir': '/var/lib/mysql',
        'galera': {'cluster_uuid': UUID, 'seqno': 9, 'node': 'db1'}}}]}


class PlanTest(base.TestCase):

    def build(self, agents):
        return restore_plan.build(self.cfg.conf, BACKUP, agents, [],
                                  ['mariabackup'])

    def test_a_physical_copy_restores_every_member(self):
        plan = self.build(_agents())
        roles = {h: p['galera']['role'] for h, p in plan['hosts'].items()}
        self.assertEqual({'db0': 'join', 'db1': 'bootstrap', 'db2': 'join'},
                         roles)
        # The server is stopped and started by the Galera phases only.
        self.assertEqual([[], [], []], [p['units'] for p in
                                        plan['hosts'].values()])
        steps = restore_plan.steps(plan)
        phases = [restore_phases.PHASES.index(s['phase']) for s in steps]
        self.assertEqual(sorted(phases), phases)
        self.assertEqual([('db1', 'bootstrap')], [
            (s['host'], s['action']) for s in steps
            if s['phase'] == 'bootstrap'])
        self.assertEqual({'db0', 'db2'}, {
            s['host'] for s in steps if s['action'] == 'empty'})
        for phase in ('cluster_stop', 'rejoin'):
            self.assertTrue(all(restore_plan.has_work(p, phase)
                                for p in plan['hosts'].values()))
        self.assertEqual(['db1'], [h for h, p in plan['hosts'].items()
                                   if restore_plan.has_work(p, 'bootstrap')])

    def test_a_member_agent_down_is_refused(self):
        agents = _agents()
        agents['db2']['state'] = states.DOWN
        exc = self.assertRaises(exception.InvalidInput, self.build, agents)
        self.assertIn('the agent of member(s) db2 is down', exc.message)

    def test_a_member_without_an_agent_is_refused(self):
        agents = _agents()
        del agents['db2']
        exc = self.assertRaises(exception.InvalidInput, self.build, agents)
        self.assertIn('has 3 members but agents on 2 only', exc.message)

    LOGICAL = {'id': 8, 'artifacts': [dict(
        BACKUP['artifacts'][0], service='mysql', name='nova', kind='sql',
        meta={})]}

    def test_a_logical_load_into_a_cluster_that_is_down_recovers_it(self):
        plan = restore_plan.build(self.cfg.conf, self.LOGICAL,
                                  _agents(state='unreachable'), [], [])
        self.assertEqual(list(MEMBERS), sorted(plan['hosts']))
        self.assertEqual((None, 'db1'), (plan['galera']['bootstrap'],
                                         plan['galera']['load_on']))
        loader = plan['hosts']['db1']
        self.assertEqual('rejoin', restore_phases.database_phase(loader))
        self.assertFalse(restore_plan.has_work(loader, 'load_db'))
        for p in plan['hosts'].values():
            self.assertEqual('recover', p['galera']['role'])
            self.assertTrue(restore_plan.has_work(p, 'cluster_stop'))
        steps = [(s['host'], s['phase'], s['action'])
                 for s in restore_plan.steps(plan)]
        # Every member is Synced before the dump is loaded into one.
        self.assertEqual(('db1', 'rejoin', 'load'), steps[-1])
        self.assertEqual(['wait'] * 3, [a for _h, p, a in steps[-4:-1]])
        self.assertEqual(3, len([s for s in steps if s[2] == 'position']))

    def test_the_accounts_load_first_when_the_cluster_is_up_again(self):
        backup = dict(self.LOGICAL, artifacts=self.LOGICAL['artifacts'] + [
            dict(self.LOGICAL['artifacts'][0], id=2, name='accounts',
                 kind='accounts')])
        plan = restore_plan.build(self.cfg.conf, backup,
                                  _agents(state='unreachable'), [], [])
        loader = plan['hosts']['db1']
        self.assertFalse(restore_plan.has_work(loader, 'load_db'))
        loads = [(s['phase'], s['target']) for s in restore_plan.steps(plan)
                 if s['action'] == 'load']
        self.assertEqual([('rejoin', 'accounts'), ('rejoin', 'nova')],
                         loads)

    def test_a_logical_load_onto_a_member_down_in_a_running_cluster(self):
        agents = _agents(state='unreachable')
        agents['db0']['info']['galera'] = _facts()
        exc = self.assertRaises(exception.InvalidInput, restore_plan.build,
                                self.cfg.conf, self.LOGICAL, agents, [], [])
        self.assertIn('Galera member db1 does not answer while cluster',
                      exc.message)
        self.assertIn('--map-host db1=db0', exc.message)

    def test_a_logical_load_into_a_cluster_down_needs_every_agent(self):
        agents = _agents(state='unreachable')
        agents['db2']['state'] = states.DOWN
        exc = self.assertRaises(exception.InvalidInput, restore_plan.build,
                                self.cfg.conf, self.LOGICAL, agents, [], [])
        self.assertIn('the agent of member(s) db2 is down', exc.message)

    def test_a_logical_load_into_a_running_cluster_stays_on_one(self):
        backup = {'id': 8, 'artifacts': [dict(
            BACKUP['artifacts'][0], service='mysql', name='nova',
            kind='sql', meta={})]}
        plan = restore_plan.build(self.cfg.conf, backup, _agents(), [], [])
        self.assertEqual(['db1'], sorted(plan['hosts']))
        self.assertNotIn('galera', plan)


class RecoverPlanTest(base.TestCase):

    def test_every_member_and_no_bootstrap_yet(self):
        plan = galera_restore.plan_recover(_agents(state='unreachable'))
        self.assertEqual(list(MEMBERS), sorted(plan['hosts']))
        self.assertIsNone(plan['galera']['bootstrap'])
        steps = restore_plan.steps(plan)
        self.assertEqual(3, len([s for s in steps
                                 if s['action'] == 'position']))

    def test_a_running_cluster_is_not_recovered(self):
        agents = _agents(state='unreachable')
        agents['db0']['info']['galera'] = _facts()
        exc = self.assertRaises(exception.InvalidInput,
                                galera_restore.plan_recover, agents)
        self.assertIn('is up on db0', exc.message)

    def test_a_split_cluster_is_refused(self):
        agents = _agents(state='unreachable')
        agents['db2']['info']['galera'] = _facts(OTHER, 'unreachable')
        exc = self.assertRaises(exception.InvalidInput,
                                galera_restore.plan_recover, agents)
        self.assertIn('split', exc.message)
        self.assertIn('%s: db2' % OTHER, exc.message)

    def test_no_member_and_agent_down(self):
        self.assertRaises(exception.InvalidInput,
                          galera_restore.plan_recover, {'x': {'info': {}}})
        agents = _agents(state='unreachable')
        agents['db1']['state'] = states.DOWN
        exc = self.assertRaises(exception.InvalidInput,
                                galera_restore.plan_recover, agents)
        self.assertIn('db1 is down', exc.message)

    def test_the_highest_seqno_bootstraps(self):
        plan = galera_restore.plan_recover(_agents(state='unreachable'))
        restore = {'plan': plan, 'tasks': [
            {'host': h, 'kind': 'restore_cluster_stop',
             'status': states.SUCCEEDED, 'result': {'steps': [
                 {'host': h, 'action': 'position', 'status': 'SUCCEEDED',
                  'target': '%s:%d' % (UUID, seqno)}]}}
            for h, seqno in (('db0', 12), ('db1', 14), ('db2', 13))]}
        self.assertEqual({'galera_bootstrap': 'db1'},
                         galera_restore.task_params(restore, 'bootstrap'))
        self.assertEqual({}, galera_restore.task_params(restore, 'prepare'))
        restore['tasks'][2]['result']['steps'][0]['target'] = \
            '%s:20' % OTHER
        self.assertIn('different cluster histories', galera_restore
                      .task_params(restore, 'rejoin')['galera_error'])
        restore['tasks'][0]['status'] = states.FAILED
        self.assertEqual({'galera_error': 'no position from db0'},
                         galera_restore.task_params(restore, 'bootstrap'))


class OrchestrationTest(base.TestCase):
    """The phases of a cluster restore, and its undo, on a catalogue."""

    def setUp(self):
        super().setUp()
        self.cat = api.Catalogue('sqlite://')
        self.cat.sync()
        test_backups.wire_conductor(self)
        self.restores = self.tracker.restores
        for host in MEMBERS:
            self.cat.record_heartbeat(host, '1', {
                'drivers': ['mariabackup'], 'services': ['mariabackup'],
                'units': {'mariabackup': ['mariadb']},
                'galera': _facts(state='unreachable')})

    def answer(self, kind, status=states.SUCCEEDED, steps=None):
        sent = [t for t in self.agent_api.sent if t['kind'] == kind]
        self.assertTrue(sent, kind)
        for task in sent:
            result = {'steps': (steps or {}).get(task['host'], [])}
            self.tracker.finished(task['id'], status, result,
                                  None if status == states.SUCCEEDED
                                  else 'broke')
        return sent

    def test_recovery_bootstraps_the_highest_then_rejoins(self):
        restore = self.restores.recover_cluster()
        self.assertIsNone(restore['backup_id'])
        self.answer('restore_prepare')
        seqnos = {'db0': 3, 'db1': 5, 'db2': 4}
        self.answer('restore_cluster_stop', steps={
            h: [{'host': h, 'action': 'position', 'status': 'SUCCEEDED',
                 'target': '%s:%d' % (UUID, n)}] for h, n in seqnos.items()})
        boot = self.answer('restore_bootstrap')
        self.assertEqual({'db1'}, {t['params']['galera_bootstrap']
                                   for t in boot})
        self.assertEqual(3, len(boot))
        self.answer('restore_rejoin')
        self.answer('restore_finish')
        self.assertEqual(states.SUCCEEDED,
                         self.cat.get_restore(restore['id'])['status'])

    def test_a_failed_rejoin_goes_through_cluster_undo(self):
        restore = self.restores.recover_cluster()
        self.answer('restore_prepare')
        self.answer('restore_cluster_stop')
        self.answer('restore_bootstrap')
        self.answer('restore_rejoin', states.FAILED)
        undo = self.answer('restore_cluster_undo')
        self.assertEqual(3, len(undo))
        self.answer('restore_rollback')
        done = self.cat.get_restore(restore['id'])
        self.assertEqual(states.FAILED, done['status'])
        self.assertIn('rejoin failed', done['error'])

    def test_a_failure_before_anything_stopped_skips_the_undo(self):
        self.restores.recover_cluster()
        self.answer('restore_prepare', states.FAILED)
        self.assertEqual(3, len([t for t in self.agent_api.sent
                                 if t['kind'] == 'restore_rollback']))
        self.assertEqual([], [t for t in self.agent_api.sent
                              if t['kind'] == 'restore_cluster_undo'])
