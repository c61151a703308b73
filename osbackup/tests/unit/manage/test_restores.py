"""How a restore's per-host result is shown (issue 18.4)."""

import io
import json
from unittest import mock

import fixtures

from osbackup.conductor import rpcapi
from osbackup import exception
from osbackup.manage import restores
from osbackup.tests import base


def _task(host, kind, status, at='2026-12-02T10:00:00Z'):
    return {'host': host, 'kind': kind, 'status': status, 'created_at': at}


def _restore(**kw):
    return dict({
        'id': 4, 'backup_id': 3, 'status': 'FAILED', 'hosts': [],
        'services': [], 'created_at': 'x', 'finished_at': 'y',
        'error': 'stop failed on cmp: agent cmp went silent',
        'plan': {'hosts': {'cmp': {}, 'ctl': {}}}, 'steps': [],
        'tasks': [_task('cmp', 'restore_stop', 'TIMED_OUT'),
                  _task('ctl', 'restore_stop', 'SUCCEEDED'),
                  _task('cmp', 'restore_rollback', 'TIMED_OUT'),
                  _task('ctl', 'restore_rollback', 'SUCCEEDED')]}, **kw)


class ShowTest(base.TestCase):

    def capture(self, func, *args):
        out = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stdout', out))
        func(*args)
        return out.getvalue()

    def test_json_carries_each_hosts_rollback(self):
        data = json.loads(self.capture(
            lambda: restores.output.emit_json(restores.public(_restore()))))
        self.assertEqual({'cmp': 'timed_out', 'ctl': 'done'},
                         {h['host']: h['rollback']
                          for h in data['host_status']})
        self.assertEqual(['cmp'], data['needs_attention'])

    def test_table_says_which_hosts_need_attention(self):
        text = self.capture(restores.print_restore, _restore())
        self.assertIn('ATTENTION: restore 4 FAILED and was NOT rolled back '
                      'on 1 host(s)', text)
        self.assertIn('  cmp (rollback timed_out): its agent did not roll '
                      'back', text)
        self.assertNotIn('  ctl (rollback', text)

    def test_rolled_back_everywhere_is_said_plainly(self):
        restore = _restore()
        restore['tasks'][2]['status'] = 'SUCCEEDED'
        text = self.capture(restores.print_restore, restore)
        self.assertNotIn('ATTENTION', text)
        self.assertIn('Restore 4 FAILED and was rolled back on every host',
                      text)

    def test_dry_run_has_no_host_status(self):
        plan = {'id': None, 'backup_id': 3, 'status': 'DRY_RUN',
                'dry_run': True, 'plan': {'hosts': {'ctl': {}}},
                'steps': []}
        self.assertNotIn('host_status', restores.public(plan))
        self.assertNotIn('Rollback', self.capture(restores.print_restore,
                                                  plan))

    def test_dry_run_names_the_version_differences(self):
        diff = {'host': 'ctl', 'what': 'nova-common', 'backup': '30',
                'running': '31', 'artifacts': ['nova']}
        plan = {'id': None, 'backup_id': 3, 'status': 'DRY_RUN',
                'dry_run': True, 'steps': [],
                'plan': {'hosts': {'ctl': {}}, 'versions': [diff]}}
        self.assertEqual([diff], restores.public(plan)['versions'])
        text = self.capture(restores.print_restore, plan)
        self.assertIn('Version differences between the backup and the '
                      'hosts: 1\n  ctl: nova-common 30 in the backup '
                      '(nova), 31 running\n', text)
        plan['plan']['versions'] = []
        self.assertIn('hosts: none seen', self.capture(
            restores.print_restore, plan))


class MapHostOptionTest(base.TestCase):

    def test_parses_and_refuses(self):
        self.assertEqual({'a': 'b', 'c': 'd'},
                         restores.parse_map_host(['a=b', 'c=d']))
        for bad in (['a'], ['=b'], ['a='], ['a=a'], ['a=b', 'a=c']):
            self.assertRaises(exception.InvalidInput,
                              restores.parse_map_host, bad)


class ForceVersionTest(base.TestCase):
    """restore create --force needs RPC 1.6; without it, 1.0 as before."""

    def api(self):
        client = mock.Mock()
        with mock.patch.object(rpcapi.rpc, 'get_client',
                               return_value=client):
            return rpcapi.ConductorAPI(self.cfg.conf), client

    def test_force_is_sent_at_1_6(self):
        api, client = self.api()
        api.create_restore({}, 3, [], ['ovn'], False, force=True)
        client.prepare.assert_called_once_with(version='1.6')
        self.assertTrue(client.prepare.return_value.call.call_args.kwargs[
            'force'])

    def test_without_force_nothing_changes(self):
        api, client = self.api()
        api.create_restore({}, 3, [], ['ovn'], False)
        client.prepare.assert_called_once_with(version='1.0')
        self.assertNotIn('force',
                         client.prepare.return_value.call.call_args.kwargs)

    def test_skip_accounts_is_sent_at_1_9(self):
        api, client = self.api()
        api.create_restore({}, 3, [], [], False, skip_accounts=True)
        client.prepare.assert_called_once_with(version='1.9')
        self.assertTrue(client.prepare.return_value.call.call_args.kwargs[
            'skip_accounts'])

    def test_the_command_passes_skip_accounts_on(self):
        env = mock.Mock(all_in_one=False)
        env.call.return_value = {'id': None, 'backup_id': 3, 'dry_run': True,
                                 'status': 'DRY_RUN', 'plan': {},
                                 'steps': []}
        commands = restores.RestoreCommands(env)
        self.assertEqual(0, commands.create(3, dry_run=True,
                                            skip_accounts=True, fmt='json'))
        self.assertTrue(env.call.call_args.kwargs['skip_accounts'])

    def test_a_conductor_capped_below_1_6_is_one_clear_error(self):
        api, client = self.api()
        client.can_send_version.return_value = False
        exc = self.assertRaises(exception.ConductorUnavailable,
                                api.create_restore, {}, 3, [], [], False,
                                force=True)
        self.assertIn('needs conductors at RPC API 1.6', exc.message)
