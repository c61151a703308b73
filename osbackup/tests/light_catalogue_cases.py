"""The light read path says what the full catalogue says, row for row.

Shared by the unit test (SQLite) and the functional test (MariaDB).
"""

import datetime
from unittest import mock

from oslo_utils import timeutils

from osbackup.db import api
from osbackup.db import light
from osbackup import states


def _at(seconds):
    return mock.patch.object(timeutils, 'utcnow', return_value=(
        timeutils.utcnow() + datetime.timedelta(seconds=seconds)))


class LightCatalogueCases:
    """Mixin: ``self.url`` names a synced, empty catalogue."""

    def populate(self, cat: api.Catalogue) -> None:
        now = timeutils.utcnow()
        cat.record_reports([
            ('heartbeat', 'up-1',
             ('1.2', {'drivers': ['nova'], 'free_bytes': 7 << 30}, 0.25)),
            ('heartbeat', 'stopped-1', ('1.2', {})),
            ('skewed', 'skewed-1', ('1.1', {'drivers': ['glance']}, 300.0)),
        ])
        cat.record_reports([('goodbye', 'stopped-1', None)])
        with _at(-600):
            cat.record_reports([('heartbeat', 'down-1', ('1.0', {}))])
        cat.record_rejections({
            'claimed': ('another key', 3, now, now),
            'old': ('unsigned', 1, now - datetime.timedelta(hours=2),
                    now - datetime.timedelta(hours=2))})

    def test_agents_and_rejections_equal_the_full_catalogue(self):
        full = api.Catalogue(self.url)
        self.populate(full)
        fast = light.LightCatalogue.open(self.url)
        self.assertIsNotNone(fast)
        self.addCleanup(fast.close)
        agents = full.list_agents(60)
        self.assertEqual(agents, fast.list_agents(60))
        self.assertEqual({'up-1': states.UP, 'stopped-1': states.STOPPED,
                          'skewed-1': states.SKEWED, 'down-1': states.DOWN},
                         {a['host']: a['state'] for a in agents})
        self.assertEqual(full.list_rejections(60), fast.list_rejections(60))
        self.assertEqual(['claimed'],
                         [r['host'] for r in fast.list_rejections(60)])
        self.assertEqual(full.list_rejections(3 * 3600),
                         fast.list_rejections(3 * 3600))

    def test_each_read_sees_what_was_committed_since(self):
        full = api.Catalogue(self.url)
        fast = light.LightCatalogue.open(self.url)
        self.addCleanup(fast.close)
        self.assertEqual([], fast.list_agents(60))
        full.record_reports([('heartbeat', 'late-1', ('1.2', {}))])
        self.assertEqual(['late-1'],
                         [a['host'] for a in fast.list_agents(60)])
