"""Binlog archive: what to ship, the binlog walk, and ranges with gaps."""

import datetime
import io
import struct

from osbackup import binlog_chain
from osbackup.conductor import binlogs
from osbackup.drivers import binlog_archive
from osbackup import exception
from osbackup import states
from osbackup.tests import base


def event(when, kind, size_body=b'', server_id=1):
    size = binlog_archive.HEADER.size + len(size_body)
    return binlog_archive.HEADER.pack(when, kind, server_id, size, 0,
                                      0) + size_body


def gtid(when, domain, seq, server_id=7):
    return event(when, binlog_archive.GTID_EVENT,
                 binlog_archive.GTID_BODY.pack(seq, domain) + b'\0' * 5,
                 server_id)


def binlog(*events):
    return binlog_archive.MAGIC + b''.join(events)


class PlanTest(base.TestCase):

    LOGS = [('b.000003', 400), ('b.000004', 900), ('b.000005', 120)]

    def test_first_run_ships_everything_listed(self):
        ranges, gap = binlog_archive.plan(self.LOGS, None)
        self.assertIsNone(gap)
        self.assertEqual([('b.000003', 0, 400, True),
                          ('b.000004', 0, 900, True),
                          ('b.000005', 0, 120, False)], ranges)

    def test_continues_inside_a_file_and_skips_empty(self):
        ranges, gap = binlog_archive.plan(
            self.LOGS, {'file': 'b.000004', 'position': 900})
        self.assertIsNone(gap)
        self.assertEqual([('b.000005', 0, 120, False)], ranges)
        ranges, _ = binlog_archive.plan(
            self.LOGS, {'file': 'b.000004', 'position': 500})
        self.assertEqual(('b.000004', 500, 900, True), ranges[0])

    def test_purged_file_is_a_gap(self):
        ranges, gap = binlog_archive.plan(
            self.LOGS, {'file': 'b.000002', 'position': 77})
        self.assertIn('b.000002 position 77 to b.000003 were purged', gap)
        self.assertEqual('b.000003', ranges[0][0])
        self.assertEqual(0, ranges[0][1])

    def test_reset_and_shorter_file_are_gaps(self):
        _, gap = binlog_archive.plan(
            [('b.000001', 300)], {'file': 'b.000009', 'position': 10})
        self.assertIn('start again at b.000001', gap)
        ranges, gap = binlog_archive.plan(
            [('b.000001', 300)], {'file': 'b.000001', 'position': 500})
        self.assertIn('shorter (300 bytes) than what was archived', gap)
        self.assertEqual([('b.000001', 0, 300, False)], ranges)


class ScanTest(base.TestCase):

    def test_times_and_gtids_of_whole_events_only(self):
        data = binlog(event(100, 15, b'x' * 10), gtid(105, 0, 41),
                      event(106, 2, b'q' * 20), gtid(110, 0, 42),
                      event(111, 16, b'z' * 8))
        cut = len(data) - 3      # the last event is not whole yet
        facts = binlog_archive.scan(io.BytesIO(data), 0, cut)
        self.assertEqual('0-7-41', facts['gtid_start'])
        self.assertEqual('0-7-42', facts['gtid_end'])
        self.assertEqual(100, facts['start_time'])
        self.assertEqual(110, facts['end_time'])
        self.assertEqual(len(data) - len(event(111, 16, b'z' * 8)),
                         facts['end_pos'])
        later = binlog_archive.scan(io.BytesIO(data), facts['end_pos'],
                                    len(data))
        self.assertEqual(111, later['start_time'])
        self.assertIsNone(later['gtid_start'])
        self.assertEqual(len(data), later['end_pos'])

    def test_not_a_binlog(self):
        self.assertRaises(exception.DumpFailed, binlog_archive.scan,
                          io.BytesIO(b'nope' + b'\0' * 40), 0, 44)

    def test_closed_copy_clears_only_the_in_use_flag(self):
        data = binlog(binlog_archive.HEADER.pack(1, 15, 1, 19, 0, 0x41))
        out = binlog_archive.closed_copy(data)
        self.assertEqual(0x40, struct.unpack_from(
            '<H', out, binlog_archive.FLAGS_AT)[0])
        self.assertEqual(len(data), len(out))


def seg(file, start, end, t0, t1, g0=None, g1=None, gap=None, size=10):
    return {'host': 'db1', 'size': size,
            'meta': {'file': file, 'start_pos': start, 'end_pos': end,
                     'start_time': t0, 'end_time': t1, 'gtid_start': g0,
                     'gtid_end': g1, 'gap': gap}}


class RangesTest(base.TestCase):

    def test_contiguous_segments_make_one_range(self):
        out = binlog_chain.ranges([
            seg('b.000001', 0, 500, 'T1', 'T2', '0-1-1', '0-1-3'),
            seg('b.000001', 500, 800, 'T3', 'T4', '0-1-4', '0-1-5'),
            seg('b.000002', 0, 300, 'T5', 'T6', None, None)])
        self.assertEqual(1, len(out))
        rng = binlog_chain.summary(out[0])
        self.assertEqual(('T1', 'T6', '0-1-1', '0-1-5', 3, 30, None),
                         (rng['start_time'], rng['end_time'],
                          rng['gtid_start'], rng['gtid_end'],
                          rng['segments'], rng['size'], rng['gap_before']))
        self.assertEqual(('b.000002', 300), (rng['last_file'],
                                             rng['end_pos']))

    def test_gaps_split_ranges_and_are_named(self):
        out = binlog_chain.ranges([
            seg('b.000001', 0, 500, 'T1', 'T2'),
            # b.000002 never archived
            seg('b.000003', 0, 300, 'T5', 'T6'),
            seg('b.000004', 0, 300, 'T7', 'T8', gap='purged'),
            seg('b.000004', 301, 400, 'T9', 'T9')])
        self.assertEqual(4, len(out))
        self.assertIsNone(out[0]['gap_before'])
        self.assertIn('not archived: b.000001 from position 500 to '
                      'b.000003 position 0', out[1]['gap_before'])
        self.assertEqual('purged', out[2]['gap_before'])
        self.assertIn('b.000004 from position 300', out[3]['gap_before'])


class DueTest(base.TestCase):

    NOW = datetime.datetime(2026, 12, 3, 12, 0, 0)

    def agent(self, host, interval, state=states.UP):
        info = {'binlog': {'interval': interval}} if interval else {}
        return {'host': host, 'state': state, 'info': info}

    def test_due_after_interval_never_twice_at_once(self):
        ago = datetime.timedelta
        agents = [self.agent('a', 60), self.agent('b', 60),
                  self.agent('c', 60), self.agent('d', 0),
                  self.agent('e', 5, states.DOWN), self.agent('f', 1)]
        tasks = {'a': (self.NOW - ago(seconds=61), False),
                 'b': (self.NOW - ago(seconds=30), False),
                 'c': (self.NOW - ago(seconds=300), True)}
        self.assertEqual(['a', 'f'], binlogs.due(agents, tasks, self.NOW))

    def member(self, host, cluster='c1'):
        agent = self.agent(host, 60)
        agent['info']['galera'] = {'cluster_uuid': cluster}
        return agent

    def test_a_galera_cluster_archives_on_one_fixed_member(self):
        agents = [self.member('g2'), self.member('g1'), self.member('g3'),
                  self.agent('solo', 60), self.member('h1', 'c2')]
        self.assertEqual(['g1', 'h1', 'solo'],
                         binlogs.due(agents, {}, self.NOW))
        self.assertEqual(['g3', 'h1', 'solo'],
                         binlogs.due(agents, {}, self.NOW, fixed='g3'))
        why = binlogs.archivers(agents, 'g3')
        self.assertIsNone(why['g3'])
        self.assertEqual('Galera cluster c1: binlog archived on g3',
                         why['g1'])


def archive_backup(backup_id, *names, status=states.SUCCEEDED):
    return {'id': backup_id, 'policy': binlogs.ARCHIVE_POLICY,
            'status': status, 'created_at': datetime.datetime(2026, 12, 1),
            'artifacts': [{'host': 'db1', 'name': n,
                           'status': states.AVAILABLE} for n in names]}


class RetentionTest(base.TestCase):

    BACKUPS = [archive_backup(1, 'b.000001-0', 'b.000002-0'),
               archive_backup(2, 'b.000002-900', 'b.000003-0'),
               archive_backup(3),
               archive_backup(4, 'b.000004-0'),
               archive_backup(5, 'b.000005-0', status=states.RUNNING),
               archive_backup(6),
               {'id': 7, 'policy': 'nightly', 'status': states.SUCCEEDED,
                'created_at': datetime.datetime(2026, 12, 1),
                'artifacts': []}]

    def base(self, backup_id, file):
        return {'backup_id': backup_id, 'host': 'db1',
                'binlog': {'file': file, 'position': 400}}

    def test_keeps_what_the_oldest_kept_base_needs_and_no_more(self):
        bases = [self.base(20, 'b.000004'), self.base(10, 'b.000003')]
        gone = binlogs.expired_archives(self.BACKUPS, bases, set())
        self.assertEqual([1, 3], [g['id'] for g in gone])
        self.assertIn('oldest kept base backup of db1 (backup 10, '
                      'b.000003)', gone[0]['reason'])
        # Base 10 is pruned this time: base 20's file and on stay.
        gone = binlogs.expired_archives(self.BACKUPS, bases, {10})
        self.assertEqual([1, 2, 3], [g['id'] for g in gone])

    def test_no_base_keeps_every_binlog(self):
        self.assertEqual([3], [g['id'] for g in binlogs.expired_archives(
            self.BACKUPS, [], set())])


class LagTest(base.TestCase):

    def test_backup_check_warns_on_lag_and_breaks(self):
        from osbackup import freshness
        now = datetime.datetime(2026, 12, 3, 12, 0, 0)
        limits = freshness.Thresholds(26 * 3600, 48 * 3600, None)
        row = {'host': 'db1', 'service': 'binlog',
               'last_success': now - datetime.timedelta(seconds=200),
               'archive_lag_limit': binlogs.lag_limit(60)}
        item = freshness.judge(row, now, limits)
        self.assertEqual(freshness.WARNING, item['state'])
        self.assertIn('binlog archive lags', item['reasons'][0])
        row['last_success'] = now - datetime.timedelta(seconds=100)
        self.assertEqual(freshness.OK, freshness.judge(row, now,
                                                       limits)['state'])
        row['archive_break'] = 'purged'
        item = freshness.judge(row, now, limits)
        self.assertEqual(freshness.WARNING, item['state'])
        self.assertIn('break in the binlog chain', item['reasons'][0])
