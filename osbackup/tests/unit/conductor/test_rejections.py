"""Refused senders kept for `agent list`, bounded; skews go to the recorder."""

from unittest import mock

from osbackup.conductor import rejections
from osbackup.db import api
from osbackup.manage import agents as agents_cmd
from osbackup import signing
from osbackup import states
from osbackup.tests import base


def _heartbeat(host):
    return {'method': 'heartbeat', 'args': {'host': host, 'version': '1',
                                            'info': {'drivers': ['nova']}}}


class RejectionsTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.cat = api.Catalogue('sqlite://')
        self.cat.sync()
        self.recorder = mock.Mock()
        self.rej = rejections.Rejections(self.cat, self.recorder,
                                         max_hosts=3)

    def test_refused_heartbeats_are_counted_per_claimed_host(self):
        for _ in range(4):
            self.rej.rejected(_heartbeat('cmp'), {'sender': 'cmp'},
                              signing.MessageRejected('another key'))
        self.rej.rejected({'method': 'task_finished', 'args': {}},
                          {'sender': 'ctl'},
                          signing.MessageRejected('unsigned'))
        self.rej.flush()
        rows = {r['host']: r for r in self.cat.list_rejections(60)}
        self.assertEqual({'cmp': 4, 'ctl': 1},
                         {h: r['count'] for h, r in rows.items()})
        self.assertEqual('another key', rows['cmp']['reason'])
        self.recorder.skewed.assert_not_called()

    def test_claims_are_bounded_between_flushes(self):
        for i in range(10):
            self.rej.rejected(_heartbeat('h%d' % i), None,
                              signing.MessageRejected('unsigned'))
        self.rej.flush()
        self.assertEqual(3, len(self.cat.list_rejections(60)))

    def test_heartbeat_refused_for_its_time_is_a_skew(self):
        self.rej.rejected(_heartbeat('cmp'), {'sender': 'cmp'},
                          signing.ClockRejected('issued 300 s ahead', 300.0))
        self.recorder.skewed.assert_called_once_with(
            'cmp', '1', {'drivers': ['nova']}, 300.0)
        self.rej.flush()
        self.assertEqual([], self.cat.list_rejections(60))

    def test_agent_list_shows_rejected_hosts_not_up_ones(self):
        self.cat.record_heartbeat('up1', '1', {})
        self.rej.rejected(_heartbeat('up1'), None,
                          signing.MessageRejected('unsigned'))
        self.rej.rejected(_heartbeat('new1'), None,
                          signing.MessageRejected('another key'))
        self.rej.flush()
        listed = {a['host']: a for a in agents_cmd.merge(
            [agents_cmd._flatten(a) for a in self.cat.list_agents(60)],
            self.cat.list_rejections(60))}
        self.assertEqual(states.UP, listed['up1']['state'])
        self.assertEqual(states.REJECTED, listed['new1']['state'])
        self.assertIn('another key (1 message(s) refused since',
                      listed['new1']['reason'])
        self.assertIsNone(listed['new1']['clock_offset'])
