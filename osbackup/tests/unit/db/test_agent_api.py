"""Agents' states from heartbeats, goodbyes and skews; rejected senders."""

import datetime
from unittest import mock

from oslo_utils import timeutils

from osbackup.db import agent_api
from osbackup.db import api
from osbackup import exception
from osbackup import states
from osbackup.tests import base


def _later(seconds):
    return mock.patch.object(timeutils, 'utcnow', return_value=(
        timeutils.utcnow() + datetime.timedelta(seconds=seconds)))


class AgentStateTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.cat = api.Catalogue('sqlite://')
        self.cat.sync()

    def state(self, host='h1'):
        return {a['host']: a for a in self.cat.list_agents(60)}[host]

    def test_goodbye_stops_at_once_and_a_heartbeat_revives(self):
        self.cat.record_reports([('heartbeat', 'h1', ('1', {}, 2.0))])
        self.assertEqual((states.UP, 2.0), (self.state()['state'],
                                            self.state()['clock_offset']))
        self.cat.record_reports([('goodbye', 'h1', None)])
        self.assertEqual(states.STOPPED, self.state()['state'])
        self.assertIsNotNone(self.state()['stopped_at'])
        self.cat.record_reports([('heartbeat', 'h1', ('1', {}))])
        self.assertEqual(states.UP, self.state()['state'])
        self.assertIsNone(self.state()['stopped_at'])

    def test_goodbye_then_heartbeat_in_one_batch_is_up(self):
        self.cat.record_reports([('heartbeat', 'h1', ('1', {}))])
        self.cat.record_reports([('goodbye', 'h1', None),
                                 ('heartbeat', 'h1', ('1', {}))])
        self.assertEqual(states.UP, self.state()['state'])
        self.cat.record_reports([('heartbeat', 'h1', ('1', {})),
                                 ('goodbye', 'h1', None)])
        self.assertEqual(states.STOPPED, self.state()['state'])

    def test_skew_lists_a_new_host_skewed_until_fixed(self):
        self.cat.record_reports([('skewed', 'h1',
                                  ('1', {'drivers': ['nova']}, 300.0))])
        agent = self.state()
        self.assertEqual((states.SKEWED, 300.0, ['nova']),
                         (agent['state'], agent['clock_offset'],
                          agent['info']['drivers']))
        self.assertEqual({'h1': 300.0},
                         self.cat.skewed_agents(['h1', 'h2'], 60))
        # The clock fixed: its next heartbeat is accepted.
        with _later(5):
            self.cat.record_reports([('heartbeat', 'h1', ('1', {}, 0.5))])
            self.assertEqual((states.UP, 0.5),
                             (self.state()['state'],
                              self.state()['clock_offset']))
            self.assertEqual({}, self.cat.skewed_agents(['h1'], 60))

    def test_skew_of_a_known_host_keeps_its_last_heartbeat(self):
        self.cat.record_reports([('heartbeat', 'h1', ('1', {}))])
        before = self.state()['last_heartbeat']
        with _later(5):
            self.cat.record_reports([('skewed', 'h1', ('1', {}, -90.0))])
            self.assertEqual((states.SKEWED, before),
                             (self.state()['state'],
                              self.state()['last_heartbeat']))
        # Skewed heartbeats stop (the agent died): down, not skewed.
        with _later(120):
            self.assertEqual(states.DOWN, self.state()['state'])

    def test_delete_refuses_an_up_agent_unless_forced(self):
        self.cat.record_heartbeat('h1', '1', {})
        err = self.assertRaises(exception.Conflict, self.cat.delete_agent,
                                'h1', 60)
        self.assertIn('h1 is up', err.message)
        self.assertEqual(states.UP,
                         self.cat.delete_agent('h1', 60, force=True)['state'])
        self.assertEqual([], self.cat.list_agents(60))
        self.assertRaises(exception.NotFound, self.cat.delete_agent, 'h1',
                          60)

    def test_delete_a_down_agent_keeps_its_backups(self):
        self.cat.record_heartbeat('h1', '1', {})
        backup = self.cat.create_backup(['h1'], [])
        with _later(120):
            self.assertEqual(states.DOWN,
                             self.cat.delete_agent('h1', 60)['state'])
        self.assertEqual(['h1'], self.cat.get_backup(backup['id'])['hosts'])

    def test_rejections_accumulate_and_stay_bounded(self):
        now = timeutils.utcnow()
        self.cat.record_rejections({'x': ('another key', 2, now, now)})
        self.cat.record_rejections({'x': ('unsigned', 3, now, now)})
        (row,) = self.cat.list_rejections(60)
        self.assertEqual(('x', 'unsigned', 5), (row['host'], row['reason'],
                                                row['count']))
        many = {'h%03d' % i: ('r', 1, now, now + datetime.timedelta(
            seconds=i)) for i in range(agent_api.MAX_REJECTIONS + 20)}
        with _later(200):
            self.cat.record_rejections(many)
            rows = self.cat.list_rejections(3600)
        self.assertEqual(agent_api.MAX_REJECTIONS, len(rows))
        # The newest are kept.
        self.assertEqual('h%03d' % (agent_api.MAX_REJECTIONS + 19),
                         rows[0]['host'])
        with _later(7200):
            self.assertEqual([], self.cat.list_rejections(60))
