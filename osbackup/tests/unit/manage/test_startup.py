"""Start-up mistakes: one line on stderr, exit 2 (issues 20.6, 20.8)."""

import argparse
import io
import os
from unittest import mock

import fixtures
from oslo_db import exception as db_exc

from osbackup.cmd import common
from osbackup.cmd import manage as manage_cmd
from osbackup import exception
from osbackup.tests import base


class _Stderr(base.TestCase):

    def setUp(self):
        super().setUp()
        self.stderr = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', self.stderr))
        # Parsing reconfigures logging: keep the test runner's.
        self.useFixture(fixtures.MockPatch(
            'osbackup.cmd.common.logging.setup'))

    def conf_file(self, text, name='osbackup.conf'):
        path = os.path.join(self.state_dir, name)
        with open(path, 'w') as f:
            f.write(text)
        return path

    def assertOneLine(self, expected):
        lines = self.stderr.getvalue().splitlines()
        self.assertEqual(1, len(lines), lines)
        self.assertIn(expected, lines[0])
        self.assertNotIn('Traceback', lines[0])


class ManageStartupTest(_Stderr):

    def test_missing_config_file(self):
        self.assertEqual(2, manage_cmd.main(
            ['--config-file', '/nonexistent/osbackup.conf', 'agent',
             'list']))
        self.assertOneLine('Failed to find some config files: '
                           '/nonexistent/osbackup.conf')

    def test_config_path_is_a_directory(self):
        self.assertEqual(2, manage_cmd.main(
            ['--config-file', self.state_dir, 'agent', 'list']))
        self.assertOneLine('Cannot read config file %s: Is a directory'
                           % self.state_dir)

    def test_unparsable_config(self):
        path = self.conf_file('[DEFAULT\nhost = x\n')
        self.assertEqual(2, manage_cmd.main(['--config-file', path, 'agent',
                                             'list']))
        self.assertOneLine('Failed to parse %s' % path)

    def test_bad_choice_names_option_group_and_file(self):
        path = self.conf_file('[DEFAULT]\nservice_manager = upstart\n')
        self.assertEqual(2, manage_cmd.main(['--config-file', path, 'agent',
                                             'list']))
        self.assertOneLine('Invalid value of [DEFAULT] service_manager in '
                           '%s: Valid values are [systemd, command], but '
                           "found 'upstart'" % path)

    def test_bad_value_in_a_group(self):
        path = self.conf_file('[agent]\nnice = lots\n')
        self.assertEqual(2, manage_cmd.main(['agent', 'list',
                                             '--config-file', path]))
        self.assertOneLine('Invalid value of [agent] nice in %s' % path)

    def test_mistyped_option_shows_the_action_usage(self):
        err = self.assertRaises(SystemExit, manage_cmd.main,
                                ['--config-file', self.conf_file(''),
                                 'backup', 'create', '--bogus'])
        self.assertEqual(2, err.code)
        text = self.stderr.getvalue()
        self.assertIn('usage: ', text)
        self.assertIn('backup create [-h]', text)
        self.assertIn('unrecognized arguments: --bogus', text)
        self.assertNotIn('--log-file', text)

    def test_usage_error_without_config_names_all_in_one_mode(self):
        self.useFixture(fixtures.MockPatch(
            'osbackup.cmd.common.has_config', return_value=False))
        self.assertRaises(SystemExit, manage_cmd.main, [])
        self.assertIn('all-in-one mode: no config file found in '
                      '~/.osbackup, ~, /etc/osbackup, /etc',
                      self.stderr.getvalue())


class HoistTest(base.TestCase):

    def test_global_options_after_the_action_move_to_the_front(self):
        self.assertEqual(
            ['--config-file', 'a.conf', '--config-file=b.conf', '--debug',
             'backup', 'show', '3', '--format', 'json'],
            manage_cmd.hoist_global_options(
                ['backup', 'show', '3', '--config-file', 'a.conf',
                 '--format', 'json', '--config-file=b.conf', '--debug']))

    def test_nothing_after_double_dash_moves(self):
        self.assertEqual(['backup', '--', '--debug'],
                         manage_cmd.hoist_global_options(
                             ['backup', '--', '--debug']))


class JsonAliasTest(base.TestCase):

    def _parse(self, argv):
        parser = argparse.ArgumentParser()
        manage_cmd.add_command_parsers(parser.add_subparsers(dest='cat'))
        return parser.parse_args(argv)

    def test_json_alias(self):
        self.assertEqual('json', self._parse(['backup', 'list',
                                              '--json']).fmt)
        self.assertEqual('json', self._parse(['agent', 'list', '--format',
                                              'json']).fmt)
        self.assertEqual('table', self._parse(['backup', 'list']).fmt)


class DaemonStartupTest(_Stderr):

    def _main(self, factory, argv):
        self.useFixture(fixtures.MockPatch('osbackup.rpc.init'))
        run = self.useFixture(fixtures.MockPatch(
            'osbackup.service.run')).mock
        err = self.assertRaises(SystemExit, common.daemon_main, factory,
                                argv)
        run.assert_not_called()
        return err.code

    def test_missing_config_file(self):
        self.assertEqual(2, self._main(mock.Mock(), ['--config-file',
                                                     '/nonexistent.conf']))
        self.assertOneLine('ERROR: Failed to find some config files')

    def test_bad_value(self):
        path = self.conf_file('[DEFAULT]\nservice_manager = upstart\n')
        self.assertEqual(2, self._main(mock.Mock(), ['--config-file',
                                                     path]))
        self.assertOneLine('[DEFAULT] service_manager')

    def test_operator_error_from_the_service(self):
        factory = mock.Mock(side_effect=exception.InvalidInput(
            'Unknown driver "foo"'))
        self.assertEqual(2, self._main(factory, ['--config-file',
                                                 self.conf_file('')]))
        self.assertOneLine('ERROR: Unknown driver "foo"')

    def test_config_error_raised_late(self):
        from oslo_config import cfg
        factory = mock.Mock(side_effect=cfg.NoSuchOptError(
            'x', cfg.OptGroup('agent')))
        self.assertEqual(2, self._main(factory, ['--config-file',
                                                 self.conf_file('')]))
        self.assertOneLine('ERROR: no such option x in group [agent]')

    def test_unreachable_catalogue(self):
        factory = mock.Mock(side_effect=db_exc.DBConnectionError(
            OSError('Connection refused')))
        path = self.conf_file('[database]\nconnection = '
                              'mysql+pymysql://u:secret@db/osbackup\n')
        self.assertEqual(1, self._main(factory, ['--config-file', path]))
        self.assertOneLine('Cannot use the catalogue database '
                           'mysql+pymysql://u:***@db/osbackup: Connection '
                           'refused')

    def test_with_log_file_the_terminal_still_hears(self):
        log = os.path.join(self.state_dir, 'agent.log')
        path = self.conf_file('[DEFAULT]\nlog_file = %s\n' % log)
        factory = mock.Mock(side_effect=exception.OsbackupError('no key'))
        self.assertEqual(2, self._main(factory, ['--config-file', path]))
        self.assertOneLine('ERROR: no key')
