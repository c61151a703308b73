"""Retention: which backups a policy lets go, and what it never does."""

import copy
import datetime

from osbackup.conductor import retention
from osbackup import exception
from osbackup.tests import base

D = datetime.datetime
DAY = datetime.timedelta(days=1)
HOUR = datetime.timedelta(hours=1)
NOW = D(2025, 6, 15, 12, 0)


def art(name='nova', service='nova', host='ctl', status='available'):
    return {'host': host, 'service': service, 'name': name,
            'status': status}


def bk(id, created_at, status='SUCCEEDED', artifacts=None):
    if artifacts is None:
        artifacts = [art()]
    return {'id': id, 'status': status, 'created_at': created_at,
            'artifacts': artifacts}


def ids(result):
    return [entry['id'] for entry in result]


class RulesTest(base.TestCase):

    def test_empty_policy_refused(self):
        err = self.assertRaises(exception.InvalidInput,
                                retention.Rules().validate)
        self.assertIn('a retention policy must keep something',
                      err.message)
        self.assertIn('keep_last', err.message)
        # And expired() will not run one.
        self.assertRaises(exception.InvalidInput, retention.expired,
                          [bk(1, NOW - 30 * DAY)], retention.Rules(), NOW)

    def test_negative_and_non_numbers_refused(self):
        for kw in [{'keep_days': -1}, {'keep_last': 3, 'keep_daily': -2}]:
            err = self.assertRaises(exception.InvalidInput,
                                    retention.Rules(**kw).validate)
            self.assertIn('must not be negative', err.message)
        for value in ['3', 1.5, None, True]:
            err = self.assertRaises(exception.InvalidInput,
                                    retention.Rules(keep_last=value).validate)
            self.assertIn('whole number', err.message)

    def test_valid(self):
        self.assertIsNone(retention.Rules(keep_monthly=1).validate())
        self.assertIsNone(retention.Rules(1, 2, 3, 4, 5).validate())


class ExpiredTest(base.TestCase):

    def expired(self, backups, tz='UTC', now=NOW, **rules):
        return retention.expired(backups, retention.Rules(**rules), now, tz)

    def test_keep_days_boundary(self):
        backups = [bk(1, NOW - 7 * DAY),
                   bk(2, NOW - 7 * DAY - datetime.timedelta(seconds=1)),
                   bk(3, NOW - 30 * DAY),
                   bk(4, NOW - HOUR)]
        self.assertEqual([{'id': 2, 'reason': 'older than 7 days'},
                          {'id': 3, 'reason': 'older than 7 days'}],
                         self.expired(backups, keep_days=7))
        self.assertEqual('older than 1 day',
                         self.expired(backups, keep_days=1)[0]['reason'])

    def test_keep_last_counts_only_good_backups(self):
        backups = [bk(1, NOW - 5 * DAY),
                   bk(2, NOW - 4 * DAY),
                   bk(3, NOW - 3 * DAY, 'FAILED', [art(status='failed')]),
                   bk(4, NOW - 2 * DAY),
                   bk(5, NOW - 1 * DAY, 'TIMED_OUT', [art(status='failed')])]
        result = self.expired(backups, keep_last=2)
        self.assertEqual([1, 3, 5], ids(result))
        self.assertEqual('not among the last 2 good backups',
                         result[0]['reason'])
        self.assertIn('FAILED', result[1]['reason'])
        self.assertIn('TIMED_OUT', result[2]['reason'])

    def test_reason_names_every_rule_that_did_not_keep(self):
        backups = [bk(i, NOW - i * 2 * DAY) for i in range(1, 6)]
        result = self.expired(backups, keep_days=7, keep_last=3)
        self.assertEqual([4, 5], ids(result))
        self.assertEqual('older than 7 days and not among the last 3 '
                         'good backups', result[0]['reason'])
        result = self.expired(backups, keep_last=1, keep_daily=2,
                              keep_weekly=1)
        self.assertEqual(
            'not among the last 1 good backup, not the newest of the last '
            '2 days with a backup and not the newest of the last 1 week '
            'with a backup', result[0]['reason'])

    def test_keep_daily_only_counts_days_with_a_good_backup(self):
        backups = [
            bk(1, D(2025, 6, 15, 1)),
            bk(2, D(2025, 6, 15, 10)),
            # 14 June: nothing. 13 June: a good one, then a failed one.
            bk(3, D(2025, 6, 13, 10)),
            bk(4, D(2025, 6, 13, 11), 'FAILED', [art(status='failed')]),
            bk(5, D(2025, 6, 12, 8)),
            bk(6, D(2025, 6, 12, 9)),
            bk(7, D(2025, 6, 10, 9)),
        ]
        result = self.expired(backups, keep_daily=3)
        # Newest of 15, 13 and 12 June are kept.
        self.assertEqual([1, 4, 5, 7], ids(result))
        self.assertEqual('not the newest of the last 3 days with a backup',
                         result[0]['reason'])
        self.assertEqual([1, 3, 4, 5, 6, 7],
                         ids(self.expired(backups, keep_daily=1)))

    def test_keep_daily_uses_the_time_zone_calendar(self):
        # 22:30 UTC on 13 June is 00:30 on 14 June in Berlin.
        backups = [bk(1, D(2025, 6, 13, 20, 0)),
                   bk(2, D(2025, 6, 13, 22, 30))]
        self.assertEqual([1], ids(self.expired(backups, keep_daily=2)))
        self.assertEqual([], ids(self.expired(backups, 'Europe/Berlin',
                                              keep_daily=2)))
        self.assertRaises(exception.InvalidInput, self.expired, backups,
                          'Nowhere/Special', keep_daily=2)

    def test_keep_weekly_uses_iso_weeks_across_the_new_year(self):
        now = D(2025, 1, 7, 12)
        backups = [
            bk(1, D(2024, 12, 23, 3)),  # 2024-W52
            bk(2, D(2024, 12, 29, 3)),  # Sunday, 2024-W52
            bk(3, D(2024, 12, 30, 3)),  # Monday, 2025-W01
            bk(4, D(2025, 1, 1, 3)),    # 2025-W01
            bk(5, D(2025, 1, 5, 3)),    # Sunday, 2025-W01
            bk(6, D(2025, 1, 6, 3)),    # 2025-W02
        ]
        self.assertEqual([1, 2, 3, 4],
                         ids(self.expired(backups, now=now, keep_weekly=2)))
        # 30 December and 1 January share an ISO week with 5 January;
        # a calendar-year week would wrongly keep one of them.
        self.assertEqual([1, 3, 4],
                         ids(self.expired(backups, now=now, keep_weekly=3)))
        self.assertEqual(
            'not the newest of the last 3 weeks with a backup',
            self.expired(backups, now=now, keep_weekly=3)[0]['reason'])

    def test_keep_monthly_month_ends_and_new_year(self):
        now = D(2025, 2, 11, 12)
        backups = [
            bk(1, D(2024, 11, 30, 3)),
            bk(2, D(2024, 12, 1, 3)),
            bk(3, D(2024, 12, 31, 3)),
            bk(4, D(2025, 1, 1, 3)),
            bk(5, D(2025, 1, 31, 3)),
            bk(6, D(2025, 2, 10, 3)),
        ]
        self.assertEqual([1, 2, 4],
                         ids(self.expired(backups, now=now, keep_monthly=3)))
        self.assertEqual([2, 4],
                         ids(self.expired(backups, now=now, keep_monthly=4)))
        # 31 January 23:30 UTC is 1 February in Berlin: January's newest
        # is then the one from the 1st.
        backups[4]['created_at'] = D(2025, 1, 31, 23, 30)
        self.assertEqual([1, 2, 5], ids(self.expired(
            backups, 'Europe/Berlin', now=now, keep_monthly=3)))

    def test_months_without_backups_use_no_slot(self):
        now = D(2025, 5, 1)
        backups = [bk(1, D(2025, 1, 5)), bk(2, D(2025, 3, 5)),
                   bk(3, D(2025, 4, 5)), bk(4, D(2024, 12, 5))]
        self.assertEqual([4],
                         ids(self.expired(backups, now=now, keep_monthly=3)))

    def test_failed_backups_kept_only_within_keep_days(self):
        failed = [art(status='failed')]
        backups = [bk(1, NOW - 10 * DAY),
                   bk(2, NOW - 2 * DAY, 'FAILED', failed),
                   bk(3, NOW - 9 * DAY, 'FAILED', failed),
                   bk(4, NOW - 8 * DAY, 'TIMED_OUT', failed)]
        result = self.expired(backups, keep_days=3, keep_last=5,
                              keep_daily=5)
        # keep_last and keep_daily never keep a backup that did not
        # succeed; keep_days does, for diagnosis.
        self.assertEqual([3, 4], ids(result))
        self.assertEqual('FAILED and older than 3 days', result[0]['reason'])
        self.assertEqual('TIMED_OUT and older than 3 days',
                         result[1]['reason'])
        # Without keep_days nothing keeps them.
        result = self.expired(backups, keep_last=5)
        self.assertEqual([2, 3, 4], ids(result))
        self.assertIn('only keep_days', result[0]['reason'])

    def test_running_and_pending_backups_never_deleted(self):
        backups = [bk(1, NOW - 90 * DAY, 'RUNNING', []),
                   bk(2, NOW - 60 * DAY, 'PENDING', []),
                   bk(3, NOW - 30 * DAY),
                   bk(4, NOW - 20 * DAY)]
        self.assertEqual([3], ids(self.expired(backups, keep_last=1)))
        # 4 stays as the newest copy of nova, see the safety tests.
        self.assertEqual([3], ids(self.expired(backups, keep_days=1)))

    def test_last_good_artifact_of_a_service_is_protected(self):
        backups = [
            # Only backup 2 has the keystone database, and it is old.
            bk(1, NOW - 40 * DAY, artifacts=[
                art(), art('keystone', 'mysql')]),
            bk(2, NOW - 30 * DAY, artifacts=[
                art(), art('keystone', 'mysql')]),
            bk(3, NOW - 20 * DAY, artifacts=[
                art(), art('keystone', 'mysql', status='failed')]),
            bk(4, NOW - 1 * DAY),
        ]
        # Every rule says delete 1-3, but 2 holds the last good keystone.
        self.assertEqual([1, 3], ids(self.expired(backups, keep_last=1)))
        self.assertEqual([1, 3], ids(self.expired(backups, keep_days=1)))

    def test_protection_is_per_host_and_covers_failed_backups(self):
        backups = [
            bk(1, NOW - 40 * DAY,
               artifacts=[art(host='ctl1'), art(host='ctl2')]),
            bk(2, NOW - 30 * DAY, artifacts=[art(host='ctl1')]),
            # A failed backup whose glance part did succeed.
            bk(3, NOW - 20 * DAY, 'FAILED', [
                art(host='ctl1', status='failed'),
                art('glance', 'glance', 'ctl1')]),
            bk(4, NOW - 10 * DAY, artifacts=[art(host='ctl1')]),
        ]
        # 1 holds ctl2's only nova copy, 3 the only glance copy.
        self.assertEqual([2], ids(self.expired(backups, keep_days=1)))

    def test_protection_does_not_rely_on_a_running_backup(self):
        backups = [
            bk(1, NOW - 40 * DAY, artifacts=[art(), art('keystone', 'mysql')]),
            bk(2, NOW - 30 * DAY, artifacts=[art(), art('keystone', 'mysql')]),
            # Newer copies, but the operation may still be aborted.
            bk(3, NOW - HOUR, 'RUNNING', [art(), art('keystone', 'mysql')]),
        ]
        self.assertEqual([1], ids(self.expired(backups, keep_days=1)))

    def test_future_backups_kept_and_take_no_slot(self):
        backups = [bk(1, NOW + 2 * DAY),
                   bk(2, NOW + datetime.timedelta(seconds=1), 'FAILED',
                      [art(status='failed')]),
                   bk(3, NOW - 1 * DAY),
                   bk(4, NOW - 2 * DAY),
                   bk(5, NOW - 3 * DAY)]
        self.assertEqual([4, 5], ids(self.expired(backups, keep_last=1)))
        self.assertEqual([4, 5], ids(self.expired(backups, keep_daily=1)))

    def test_sorted_by_id_and_input_untouched(self):
        backups = [bk(i, NOW - i * DAY - 40 * DAY) for i in (7, 3, 9, 1)]
        backups.append(bk(20, NOW))
        before = copy.deepcopy(backups)
        result = self.expired(backups, keep_last=1)
        self.assertEqual([1, 3, 7, 9], ids(result))
        self.assertEqual({'id', 'reason'}, set(result[0]))
        self.assertEqual(before, backups)

    def test_aware_times_are_compared_in_utc(self):
        plus2 = datetime.timezone(datetime.timedelta(hours=2))
        backups = [bk(1, D(2025, 6, 8, 13, 0, tzinfo=plus2)),  # 11:00 UTC
                   bk(2, D(2025, 6, 14))]
        self.assertEqual([1], ids(self.expired(backups, keep_days=7)))
        backups[0]['created_at'] = D(2025, 6, 8, 14, 0, tzinfo=plus2)
        self.assertEqual([], ids(self.expired(backups, keep_days=7)))
