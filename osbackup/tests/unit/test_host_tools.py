"""The functional tests' provide-or-skip of host programs."""

import subprocess
import unittest
from unittest import mock

import fixtures

from osbackup.tests import base
from osbackup.tests.functional import host_tools

TOOL = host_tools.Tool(commands=('/usr/sbin/fakesshd', 'fake-keygen'),
                       package='fake-server', needed_by='the fake tests')


class RequireTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.installed = set()
        mock.patch.object(host_tools, '_unavailable', {}).start()
        mock.patch.object(host_tools, 'find', self.find).start()
        self.apt = mock.patch.object(host_tools, '_apt_get',
                                     side_effect=self.apt_get).start()
        self.euid = mock.patch('os.geteuid', return_value=0).start()
        self.apt_works = True
        self.useFixture(self.env(host_tools.INSTALL_ENV, None))

    def env(self, name, value):
        return fixtures.EnvironmentVariable(name, value)

    def find(self, command):
        if command in self.installed or command == 'apt-get':
            return '/bin/%s' % command.rsplit('/', 1)[-1]
        return None

    def apt_get(self, *argv):
        if argv[0] == 'install' and self.apt_works:
            self.installed.update(TOOL.commands)
            return subprocess.CompletedProcess(argv, 0, '', '')
        return subprocess.CompletedProcess(argv, 100, '',
                                           'E: Unable to locate package')

    def test_present_tools_are_not_installed(self):
        self.installed.update(TOOL.commands)
        self.assertEqual({'/usr/sbin/fakesshd': '/bin/fakesshd',
                          'fake-keygen': '/bin/fake-keygen'},
                         host_tools.require(TOOL))
        self.apt.assert_not_called()

    def test_root_installs_the_missing_package(self):
        paths = host_tools.require(TOOL)
        self.assertEqual('/bin/fake-keygen', paths['fake-keygen'])
        self.apt.assert_called_once_with('install', '--no-install-recommends',
                                         'fake-server')

    def test_failed_install_updates_lists_then_skips_once(self):
        self.apt_works = False
        exc = self.assertRaises(unittest.SkipTest, host_tools.require, TOOL)
        self.assertIn('the fake tests needs /usr/sbin/fakesshd fake-keygen '
                      '(package fake-server)', str(exc))
        self.assertIn('apt-get install fake-server failed (exit 100: '
                      'E: Unable to locate package)', str(exc))
        self.assertEqual(['install', 'update', 'install'],
                         [c.args[0] for c in self.apt.call_args_list])
        # The next test of this process skips at once, without apt.
        self.assertRaises(unittest.SkipTest, host_tools.require, TOOL)
        self.assertEqual(3, self.apt.call_count)

    def test_not_root_skips_without_installing(self):
        self.euid.return_value = 1000
        exc = self.assertRaises(unittest.SkipTest, host_tools.require, TOOL)
        self.assertIn('not running as root', str(exc))
        self.assertIn('apt-get install fake-server', str(exc))
        self.apt.assert_not_called()

    def test_installs_can_be_turned_off(self):
        self.useFixture(self.env(host_tools.INSTALL_ENV, '0'))
        exc = self.assertRaises(unittest.SkipTest, host_tools.require, TOOL)
        self.assertIn('OSBACKUP_TEST_INSTALL=0', str(exc))
        self.apt.assert_not_called()


class FindTest(base.TestCase):

    def test_sbin_is_searched_when_not_on_path(self):
        with mock.patch.dict('os.environ', {'PATH': '/nonexistent'}):
            with mock.patch('shutil.which', return_value='/usr/sbin/x') as w:
                self.assertEqual('/usr/sbin/x', host_tools.find('x'))
        self.assertIn('/usr/sbin', w.call_args.kwargs['path'].split(':'))
