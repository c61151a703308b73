"""Point-in-time restores: the time given, the base and range chosen."""

import datetime

from osbackup import binlog_chain
from osbackup.conductor import pitr
from osbackup import exception
from osbackup.tests import base


def seg(file, start, end, t0, t1, g0, g1, gap=None):
    return {'id': start, 'name': '%s-%d' % (file, start), 'host': 'db',
            'location': '/s/%s-%d' % (file, start), 'sha256': 'a' * 64,
            'size': 1,
            'meta': {'file': file, 'start_pos': start, 'end_pos': end,
                     'start_time': t0, 'end_time': t1, 'gtid_start': g0,
                     'gtid_end': g1, 'gap': gap}}


SEGMENTS = [
    seg('b.000001', 0, 1000, '2026-12-02T10:00:00Z', '2026-12-02T11:00:00Z',
        '0-1-1', '0-1-10'),
    seg('b.000001', 1000, 2000, '2026-12-02T11:00:05Z',
        '2026-12-02T12:00:00Z', '0-1-11', '0-1-20'),
    seg('b.000002', 0, 500, '2026-12-02T12:00:01Z', '2026-12-02T13:00:00Z',
        '0-1-21', '0-1-30'),
    # b.000003 purged before it was archived
    seg('b.000004', 0, 500, '2026-12-02T15:00:00Z', '2026-12-02T16:00:00Z',
        '0-1-41', '0-1-50', gap='purged'),
]


def bases(*entries):
    return [{'backup_id': i, 'host': 'db', 'finished_at': at,
             'binlog': {'file': f, 'position': p, 'gtid': g},
             'databases': ['nova', 'keystone']}
            for i, at, f, p, g in entries]


BASES = bases((3, '2026-12-02T15:30:00Z', 'b.000004', 200, '0-1-45'),
              (2, '2026-12-02T10:30:00Z', 'b.000001', 500, '0-1-5'),
              (1, '2026-12-01T02:00:00Z', 'b.000000', 4, '0-1-0'))
RANGES = {'db': binlog_chain.ranges(SEGMENTS)}


def at(text):
    return datetime.datetime.fromisoformat(text)


class ParseTimeTest(base.TestCase):

    def test_zone_and_z_suffix(self):
        self.assertEqual(at('2026-12-02 15:04:59'),
                         pitr.parse_time('2026-12-02 16:04:59',
                                         'Europe/Paris'))
        self.assertEqual(at('2026-12-02 16:04:59'),
                         pitr.parse_time('2026-12-02 16:04:59Z',
                                         'Europe/Paris'))

    def test_bad_input_is_one_line(self):
        exc = self.assertRaises(exception.InvalidInput, pitr.parse_time,
                                'yesterday', 'UTC')
        self.assertIn('YYYY-MM-DD HH:MM:SS', str(exc))
        self.assertRaises(exception.InvalidInput, pitr.parse_time,
                          '2026-12-02 16:04:59', 'Mars/Olympus')


class ChooseTest(base.TestCase):

    def test_newest_base_before_and_the_segments_needed(self):
        choice = pitr.choose(BASES, RANGES, at('2026-12-02 12:30:00'))
        self.assertEqual(2, choice['base']['backup_id'])
        # The base's whole file (its header), up to the segment holding
        # the time; none after it.
        self.assertEqual(['b.000001-0', 'b.000001-1000', 'b.000002-0'],
                         [s['name'] for s in choice['segments']])
        spec = pitr.replay_spec(choice, ['nova'], at('2026-12-02 12:30:00'))
        self.assertEqual('2026-12-02 12:30:01', spec['stop_datetime'])
        self.assertEqual({'file': 'b.000001', 'position': 500,
                          'gtid': '0-1-5'}, spec['start'])
        cut = pitr.choose(BASES, RANGES, at('2026-12-02 10:45:00'))
        self.assertEqual(['b.000001-0'], [s['name'] for s in cut['segments']])

    def test_a_time_in_a_gap_names_the_latest_reachable_point(self):
        exc = self.assertRaises(exception.InvalidInput, pitr.choose, BASES,
                                RANGES, at('2026-12-02 14:00:00'))
        self.assertIn('falls in a gap of the binlog archive (purged)',
                      str(exc))
        self.assertIn('latest point reachable from backup 2 is '
                      '2026-12-02T13:00:00Z (GTID 0-1-30)', str(exc))

    def test_after_the_last_event_and_before_any_base(self):
        exc = self.assertRaises(exception.InvalidInput, pitr.choose, BASES,
                                RANGES, at('2026-12-02 17:00:00'))
        self.assertIn('is after the last archived event', str(exc))
        self.assertIn('2026-12-02T16:00:00Z', str(exc))
        exc = self.assertRaises(exception.InvalidInput, pitr.choose, BASES,
                                RANGES, at('2026-11-30 00:00:00'))
        self.assertIn('No backup with a binlog position finished before',
                      str(exc))
        # Backup 1's position was never archived.
        exc = self.assertRaises(exception.InvalidInput, pitr.choose, BASES,
                                RANGES, at('2026-12-01 03:00:00'))
        self.assertIn('does not hold the position of backup 1', str(exc))

    def test_to_gtid(self):
        choice = pitr.choose(BASES, RANGES, to_gtid='0-1-15')
        self.assertEqual(2, choice['base']['backup_id'])
        self.assertEqual(['b.000001-0', 'b.000001-1000'],
                         [s['name'] for s in choice['segments']])
        self.assertRaises(exception.InvalidInput, pitr.choose, BASES,
                          RANGES, to_gtid='0-1-35')

    def test_apply_keeps_the_chosen_databases(self):
        choice = dict(pitr.choose(BASES, RANGES, at('2026-12-02 12:30:00')),
                      to_time=at('2026-12-02 12:30:00'), to_gtid=None,
                      databases=['nova'])
        plan = {'hosts': {'db': {'databases': [
            {'database': 'nova'}, {'database': 'keystone'}],
            'files': [], 'units': []}}}
        pitr.apply(plan, choice)
        self.assertEqual([{'database': 'nova'}],
                         plan['hosts']['db']['databases'])
        self.assertEqual(['nova'], plan['hosts']['db']['replay']['databases'])
        self.assertEqual('b.000001:0-b.000002:500',
                         plan['pitr']['binlog_range'])
        self.assertEqual('2026-12-02 12:30:00Z', plan['pitr']['to_time'])
