"""What osbackup-manage connects to (issues 18.5, 20.5)."""

import os
import threading
import time
from unittest import mock

import fixtures

from osbackup import exception
from osbackup.manage import environment
from osbackup import rpc
from osbackup.tests import base


class _Conf(base.TestCase):

    def setUp(self):
        super().setUp()
        rpc.set_defaults(self.cfg.conf)
        # oslo.config keeps the location of a cleared override: an earlier
        # test's flag would still look set.
        for name, group in (('transport_url', None),
                            ('connection', 'database')):
            self.cfg.conf._get_opt_info(name, group).pop('location', None)

    def parse(self, text=None, name='osbackup.conf'):
        """Parse the command line as osbackup-manage does, maybe a file."""
        files = []
        if text is not None:
            files.append(os.path.join(self.state_dir, name))
            with open(files[0], 'w') as f:
                f.write(text)
        self.cfg.conf([], project='osbackup', default_config_files=files)
        return files


class ModeTest(_Conf):

    def test_notice_without_any_config_file(self):
        self.parse()
        env = environment.Environment(self.cfg.conf)
        self.assertTrue(env.all_in_one)
        notice = env.notice()
        self.assertTrue(notice.startswith('all-in-one mode: no config file '
                                          'found in ~/.osbackup, ~, '
                                          '/etc/osbackup, /etc'), notice)

    def test_notice_names_the_file_without_transport_url(self):
        path, = self.parse('[DEFAULT]\nhost = h1\n')
        self.assertIn('all-in-one mode: no transport_url in %s' % path,
                      environment.Environment(self.cfg.conf).notice())

    def test_no_notice_for_a_fleet(self):
        self.flags(transport_url='rabbit://guest:guest@127.0.0.1:1/')
        self.assertIsNone(environment.Environment(self.cfg.conf).notice())

    def test_agent_config_is_refused_and_creates_nothing(self):
        # An agent's config: a broker, no catalogue database.
        path, = self.parse('[DEFAULT]\ntransport_url = rabbit://guest:'
                           'guest@127.0.0.1:1/\n', name='agent.conf')
        env = environment.Environment(self.cfg.conf)
        for open_it in (lambda: env.catalogue, env.open_database):
            err = self.assertRaises(exception.InvalidInput, open_it)
            self.assertIn('[database] connection is not set in %s' % path,
                          err.message)
        self.assertEqual(['agent.conf'], os.listdir(self.state_dir))

    def test_fleet_catalogue_when_connection_is_set(self):
        self.flags(transport_url='rabbit://guest:guest@127.0.0.1:1/')
        self.flags(group='database', connection='sqlite:///%s/c.sqlite'
                   % self.state_dir)
        env = environment.Environment(self.cfg.conf)
        env.open_database().sync()
        self.assertEqual([], env.catalogue.list_backups())


class TransportTest(_Conf):
    """Outside all-in-one mode the broker is used for the call only."""

    def setUp(self):
        super().setUp()
        self.flags(transport_url='fake:/')
        self.addCleanup(rpc.cleanup)
        self.api = self.useFixture(fixtures.MockPatch(
            'osbackup.conductor.rpcapi.ConductorAPI')).mock.return_value

    def test_transport_closed_right_after_the_call(self):
        self.api.create_backup.return_value = {'id': 1}
        env = environment.Environment(self.cfg.conf)
        self.assertEqual({'id': 1}, env.call('create_backup', hosts=[]))
        # A broker outage while waiting can neither log reconnects nor
        # delay the exit.
        self.assertIsNone(rpc.TRANSPORT)

    def test_closing_does_not_wait_for_a_vanished_broker(self):
        self.useFixture(fixtures.MonkeyPatch(
            'osbackup.manage.environment.CLOSE_TIMEOUT', 0.2))
        stuck = threading.Event()
        self.addCleanup(stuck.set)
        env = environment.Environment(self.cfg.conf)
        env.conductor
        with mock.patch.object(rpc, 'cleanup',
                               side_effect=lambda: stuck.wait(30)):
            start = time.monotonic()
            env.close()
        self.assertLess(time.monotonic() - start, 5)
