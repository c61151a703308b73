"""The freshness rule of ``backup check``: durations, states, summary."""

import datetime

from osbackup import exception
from osbackup import freshness
from osbackup.tests import base

NOW = datetime.datetime(2026, 12, 2, 12, 0, 0)
HOUR = 3600


def _row(host='h1', service='nova', hours=None, result='SUCCEEDED',
         verify=None, verify_hours=None):
    return {'host': host, 'service': service,
            'last_success': None if hours is None
            else NOW - datetime.timedelta(hours=hours),
            'last_result': result, 'last_verify_result': verify,
            'last_verify': None if verify_hours is None
            else NOW - datetime.timedelta(hours=verify_hours)}


LIMITS = freshness.Thresholds(26 * HOUR, 48 * HOUR)


class DurationTest(base.TestCase):

    def test_units_and_combinations(self):
        for text, seconds in (('26h', 26 * HOUR), ('3d', 3 * 86400),
                              ('90m', 5400), ('45s', 45), ('1w', 604800),
                              ('1d12h', 36 * HOUR), ('120', 120),
                              ('1.5h', 5400), (' 2D ', 2 * 86400)):
            self.assertEqual(seconds, freshness.parse_duration(text), text)

    def test_garbage_is_refused_with_a_hint(self):
        for text in ('', 'h', '26x', '3 days', '-1h', '1h garbage', 'd3'):
            err = self.assertRaises(exception.InvalidInput,
                                    freshness.parse_duration, text)
            self.assertIn('26h', err.message)

    def test_warning_beyond_critical_is_refused(self):
        self.assertRaises(exception.InvalidInput, freshness.Thresholds,
                          10 * HOUR, 5 * HOUR)


class JudgeTest(base.TestCase):

    def state(self, limits=LIMITS, **kw):
        return freshness.judge(_row(**kw), NOW, limits)

    def test_ages(self):
        self.assertEqual('OK', self.state(hours=1)['state'])
        self.assertEqual('WARNING', self.state(hours=30)['state'])
        self.assertEqual('CRITICAL', self.state(hours=49)['state'])
        never = self.state(hours=None, result=None)
        self.assertEqual(('CRITICAL', ['never backed up']),
                         (never['state'], never['reasons']))

    def test_newest_attempt_failed_warns_even_when_fresh(self):
        item = self.state(hours=1, result='FAILED')
        self.assertEqual('WARNING', item['state'])
        self.assertIn('last attempt failed', item['reasons'])
        # ...but never lowers a worse state.
        self.assertEqual('CRITICAL',
                         self.state(hours=50, result='FAILED')['state'])

    def test_verification(self):
        within = freshness.Thresholds(26 * HOUR, 48 * HOUR, 7 * 24 * HOUR)
        self.assertEqual('CRITICAL', self.state(hours=1,
                                                verify='CORRUPT')['state'])
        self.assertEqual('OK', self.state(within, hours=1, verify='OK',
                                          verify_hours=24)['state'])
        stale = self.state(within, hours=1, verify='OK', verify_hours=200)
        self.assertEqual('WARNING', stale['state'])
        self.assertEqual(['not verified within 7d'], stale['reasons'])
        self.assertEqual('WARNING', self.state(within, hours=1)['state'])


class EvaluateTest(base.TestCase):

    def test_all_fresh(self):
        report = freshness.evaluate([_row(hours=2), _row('h2', hours=5)],
                                    NOW, LIMITS)
        self.assertEqual(('OK', 0), (report.state, report.exit_code))
        self.assertEqual("OSBACKUP OK - all 2 backed up within 26h (oldest "
                         "5h) | 'ok'=2 'warning'=0 'critical'=0 "
                         "'oldest_age'=18000s;93600;172800", report.line())

    def test_worst_state_wins_and_the_line_names_what_is_stale(self):
        report = freshness.evaluate(
            [_row(hours=2), _row('h2', hours=30),
             _row('h3', 'mysql', hours=None, result='FAILED')],
            NOW, LIMITS)
        self.assertEqual(('CRITICAL', 2), (report.state, report.exit_code))
        self.assertEqual(
            '2 of 3 not fresh: h3/mysql never backed up, last attempt '
            'failed; h2/nova last backup 30h ago', report.summary)
        self.assertIn("'warning'=1 'critical'=1 'oldest_age'=108000s",
                      report.perfdata)

    def test_a_named_host_without_backups_is_critical(self):
        report = freshness.evaluate([_row(hours=1)], NOW, LIMITS,
                                    hosts=['h1', 'gone'])
        self.assertEqual('CRITICAL', report.state)
        self.assertIn('gone: no backup found', report.summary)

    def test_nothing_at_all_is_unknown(self):
        report = freshness.evaluate([], NOW, LIMITS)
        self.assertEqual(('UNKNOWN', 3), (report.state, report.exit_code))

    def test_long_lists_are_cut(self):
        rows = [_row('h%02d' % i, hours=30) for i in range(15)]
        report = freshness.evaluate(rows, NOW, LIMITS)
        self.assertIn('and 5 more', report.summary)
        self.assertEqual(10, report.summary.count('last backup'))
