"""The commands as an operator meets them on a new machine (issue 20).

Each test runs the real osbackup-manage, osbackup-agent or
osbackup-conductor as a subprocess: a wrong broker URL gives up in
bounded time, a missing config file is announced, and every start-up
mistake is one line on stderr with exit status 2.
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import testtools

from osbackup.tests.functional import fleet

MANAGE = 'osbackup.cmd.manage'
AGENT = 'osbackup.cmd.agent'
CONDUCTOR = 'osbackup.cmd.conductor'


def _closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class _CommandTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix='osbackup-cli-')
        self.addCleanup(subprocess.run, ['rm', '-rf', self.dir])
        self.home = os.path.join(self.dir, 'home')
        os.mkdir(self.home)

    def write(self, name, text, mode=0o644):
        path = os.path.join(self.dir, name)
        with open(path, 'w') as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def run_cmd(self, module, *argv, env=None, timeout=60):
        """Run a command with an empty HOME; return (proc, seconds)."""
        start = time.monotonic()
        proc = subprocess.run(
            [sys.executable, '-m', module] + list(argv), cwd=self.dir,
            capture_output=True, text=True, timeout=timeout,
            env=dict(os.environ, HOME=self.home, **(env or {})))
        return proc, time.monotonic() - start

    def assertOneErrorLine(self, proc, expected, code=2):
        lines = proc.stderr.splitlines()
        self.assertEqual(code, proc.returncode, proc.stderr)
        self.assertEqual(1, len(lines), proc.stderr)
        self.assertTrue(lines[0].startswith('ERROR: '), lines[0])
        self.assertIn(expected, lines[0])


class BrokerTimeoutTest(_CommandTest):

    def test_wrong_broker_port_gives_up_naming_the_broker(self):
        port = _closed_port()
        conf = self.write('osbackup.conf', (
            '[DEFAULT]\ntransport_url = rabbit://guest:s3cret@127.0.0.1:%d/\n'
            'rpc_signing_key_file = %s\nstate_path = %s\n'
            '[database]\nconnection = sqlite:///%s/c.sqlite\n'
            '[manage]\nbroker_timeout = 3\n')
            % (port, self.write('rpc.key', os.urandom(32).hex(), 0o600),
               self.dir, self.dir))
        proc, took = self.run_cmd(MANAGE, '--config-file', conf, 'backup',
                                  'create', '--wait')
        self.assertOneErrorLine(
            proc, 'Cannot connect to the message broker '
            'rabbit://guest:***@127.0.0.1:%d/ within 3 s' % port, code=1)
        self.assertIn('Connection refused', proc.stderr)
        self.assertNotIn('s3cret', proc.stderr)
        # The timeout, start-up and a bounded close; never the 30 s
        # retry steps of oslo.messaging.
        self.assertLess(took, 20)


class ConfigLookupTest(_CommandTest):

    def setUp(self):
        super().setUp()
        for path in ('/etc/osbackup/osbackup.conf', '/etc/osbackup.conf',
                     '/etc/osbackup/osbackup-manage.conf'):
            if os.path.exists(path):
                self.skipTest('%s exists on this machine: osbackup-manage '
                              'reads it, so "no config file" cannot be '
                              'tested here' % path)

    def test_no_config_file_announces_all_in_one_mode(self):
        state = os.path.join(self.dir, 'state')
        # The state directory through oslo.config's environment source:
        # there is no config file to name it in.
        proc, _ = self.run_cmd(MANAGE, 'agent', 'list',
                               env={'OS_DEFAULT__STATE_PATH': state})
        self.assertEqual(0, proc.returncode, proc.stderr)
        self.assertIn('all-in-one mode: no config file found in '
                      '~/.osbackup, ~, /etc/osbackup, /etc', proc.stderr)

    def test_bare_command_names_the_mode_too(self):
        proc, _ = self.run_cmd(MANAGE)
        self.assertEqual(2, proc.returncode)
        self.assertIn('all-in-one', proc.stderr)

    def test_config_in_home_is_found(self):
        os.mkdir(os.path.join(self.home, '.osbackup'))
        path = os.path.join(self.home, '.osbackup', 'osbackup.conf')
        with open(path, 'w') as f:
            f.write('[DEFAULT]\nstate_path = %s/state\n' % self.dir)
        proc, _ = self.run_cmd(MANAGE, 'agent', 'list')
        self.assertEqual(0, proc.returncode, proc.stderr)
        self.assertIn('all-in-one mode: no transport_url in %s' % path,
                      proc.stderr)
        self.assertTrue(os.path.exists(os.path.join(self.dir, 'state',
                                                    'osbackup.sqlite')))

    def test_agent_config_points_to_the_missing_connection(self):
        state = os.path.join(self.dir, 'state-a1')
        conf = self.write('agent.conf', (
            '[DEFAULT]\ntransport_url = rabbit://guest:guest@127.0.0.1:%d/'
            '\nstate_path = %s\n') % (_closed_port(), state))
        for action in (['backup', 'list'], ['db', 'sync']):
            proc, _ = self.run_cmd(MANAGE, *action, '--config-file', conf)
            self.assertOneErrorLine(
                proc, '[database] connection is not set in %s' % conf)
            self.assertFalse(os.path.exists(state))


class StartupMistakeTest(_CommandTest):

    def _mistakes(self):
        key = self.write('rpc.key', os.urandom(32).hex(), 0o600)
        base = ('[DEFAULT]\nstate_path = %s\nrpc_signing_key_file = %s\n'
                'transport_url = rabbit://guest:guest@127.0.0.1:%d/\n'
                % (self.dir, key, _closed_port()))
        return [
            ('/nonexistent/osbackup.conf',
             'Failed to find some config files: /nonexistent/osbackup.conf'),
            (self.dir, 'Cannot read config file %s: Is a directory'
             % self.dir),
            (self.write('sm.conf', base + 'service_manager = upstart\n'),
             'Invalid value of [DEFAULT] service_manager'),
            (self.write('nice.conf', base + '[agent]\nnice = lots\n'),
             'Invalid value of [agent] nice'),
            (self.write('bad.conf', '[DEFAULT\nhost = x\n'),
             'Failed to parse'),
        ]

    def test_every_command_says_one_line_and_exits_2(self):
        for module, argv in ((MANAGE, ['agent', 'list']), (AGENT, []),
                             (CONDUCTOR, [])):
            for conf, expected in self._mistakes():
                proc, _ = self.run_cmd(module, '--config-file', conf, *argv)
                self.assertNotIn('Traceback', proc.stderr)
                self.assertOneErrorLine(proc, expected)

    def test_terminal_hears_even_with_a_log_file(self):
        log = os.path.join(self.dir, 'agent.log')
        conf = self.write('agent.conf', (
            '[DEFAULT]\nlog_file = %s\nstate_path = %s\n'
            'transport_url = rabbit://guest:guest@127.0.0.1:%d/\n'
            'rpc_signing_key_file = %s/missing.key\n')
            % (log, self.dir, _closed_port(), self.dir))
        proc, _ = self.run_cmd(AGENT, '--config-file', conf)
        self.assertOneErrorLine(proc, 'missing.key')
        with open(log) as f:
            self.assertIn('Cannot start: ', f.read())


class CatalogueConnectionTest(_CommandTest):
    """Against the machine's MariaDB (a database of the test's own)."""

    def setUp(self):
        super().setUp()
        fleet.require_services()
        self.db = 'osbackup_cli_%s' % uuid.uuid4().hex[:8]
        fleet.sql('CREATE DATABASE %s' % self.db)
        self.addCleanup(fleet.sql, 'DROP DATABASE IF EXISTS %s' % self.db)
        self.conf = self.write('osbackup.conf', (
            '[DEFAULT]\ntransport_url = rabbit://guest:guest@127.0.0.1:%d/\n'
            'state_path = %s\n[database]\nconnection = %s%s\n')
            % (_closed_port(), self.dir, fleet.DB_URL, self.db))

    def test_no_sql_mode_warning(self):
        for action in (['db', 'sync'], ['backup', 'list']):
            proc, _ = self.run_cmd(MANAGE, '--config-file', self.conf,
                                   *action)
            self.assertEqual(0, proc.returncode, proc.stderr)
            self.assertNotIn('SQL mode', proc.stderr)
            self.assertEqual('', proc.stderr)
