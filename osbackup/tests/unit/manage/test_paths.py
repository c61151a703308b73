"""A restore's table names the node's real paths (issue 20.8)."""

import io
from unittest import mock

import fixtures

from osbackup.manage import paths
from osbackup.manage import restores
from osbackup.tests import base


def _step(action, target, host='c1', phase='prepare'):
    return {'host': host, 'phase': phase, 'action': action,
            'target': target, 'status': None, 'error': None, 'at': None}


class RealTargetsTest(base.TestCase):

    def test_file_steps_move_under_the_root(self):
        restore = {'steps': [_step('stage', '/etc/nova'),
                             _step('replace', '/etc/nova', phase='replace'),
                             _step('verify', 'nova'),
                             _step('stop', 'nova-api', phase='stop'),
                             _step('stage', '/etc/nova', host='c2')]}
        out = paths.real_targets(restore, {'c1': '/srv/node1', 'c2': '/'})
        self.assertEqual(['/srv/node1/etc/nova', '/srv/node1/etc/nova',
                          'nova', 'nova-api', '/etc/nova'],
                         [s['target'] for s in out['steps']])
        # The catalogue's copy is left as it was.
        self.assertEqual('/etc/nova', restore['steps'][0]['target'])

    def test_roots_from_heartbeats(self):
        self.assertEqual({'c1': '/srv/node1', 'c2': '/'}, paths.agent_roots(
            [{'host': 'c1', 'info': {'root_path': '/srv/node1'}},
             {'host': 'c2', 'info': None}]))


class DryRunTableTest(base.TestCase):

    def test_plan_table_shows_the_real_path(self):
        env = mock.Mock(all_in_one=False)
        env.call.return_value = {
            'id': None, 'backup_id': 4, 'status': 'DRY_RUN', 'dry_run': True,
            'steps': [_step('stage', '/etc/nova')]}
        env.agent_roots.return_value = {'c1': '/srv/node1'}
        out = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stdout', out))
        restores.RestoreCommands(env).create(4, dry_run=True)
        self.assertIn('/srv/node1/etc/nova', out.getvalue())
