"""Cron schedules: strict parsing and cronie's daylight-saving behaviour."""

import datetime
import zoneinfo

import croniter

from osbackup.conductor import schedule
from osbackup import exception
from osbackup.tests import base

D = datetime.datetime
MINUTE = datetime.timedelta(minutes=1)
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)


def runs(expr, start, until, tz='UTC'):
    """Every run after start up to until, by chaining next_run."""
    out = []
    moment = schedule.next_run(expr, start, tz)
    while moment <= until:
        out.append(moment)
        previous, moment = moment, schedule.next_run(expr, moment, tz)
        # A run not strictly after the last would repeat for ever.
        if moment <= previous:
            raise AssertionError('%s after %s gave %s'
                                 % (expr, previous, moment))
    return out


def wall(moment, tz):
    """Local wall-clock reading of a naive UTC instant."""
    return moment.replace(tzinfo=datetime.timezone.utc).astimezone(
        zoneinfo.ZoneInfo(tz)).replace(tzinfo=None)


class ValidateTest(base.TestCase):

    def test_accepts_and_normalises_standard_syntax(self):
        for expr, normal in [
                ('*/15 * * * *', '*/15 * * * *'),
                ('  0  3 * *   MON-FRI ', '0 3 * * mon-fri'),
                ('0 0 1,15 * *', '0 0 1,15 * *'),
                ('5 4 * Jan,JUL sun', '5 4 * jan,jul sun'),
                ('0 0-23/2 * * *', '0 0-23/2 * * *'),
                ('0 9 * * 1-5', '0 9 * * 1-5'),
                ('0 9 * * 7', '0 9 * * 7'),
                ('0\t3\t31 * *', '0 3 31 * *'),
                ('0 0 29 2 *', '0 0 29 2 *'),
                ('@DAILY', '@daily'),
                (' @hourly ', '@hourly'),
                ('@weekly', '@weekly'),
                ('@monthly', '@monthly'),
                ('@yearly', '@yearly')]:
            self.assertEqual(normal, schedule.validate(expr), expr)

    def _refused(self, expr, *words):
        err = self.assertRaises(exception.InvalidInput,
                                schedule.validate, expr)
        self.assertEqual('invalid_input', err.code)
        for word in words:
            self.assertIn(word, err.message, expr)
        return err

    def test_refuses_seconds_and_years(self):
        self._refused('0 0 3 * * *', 'has 6 fields', 'exactly 5',
                      'seconds')
        self._refused('0 0 3 * * * 2030', 'has 7 fields')
        self._refused('* * * *', 'has 4 fields')

    def test_refuses_garbage(self):
        for expr in ['', '   ', 'daily', 'every day at 3', 'a b c d e',
                     '1.5 * * * *', '-1 * * * *', '0 3 * * funday',
                     '0 3 * foo *', '*/x * * * *', '0,,5 * * * *',
                     '** * * * *']:
            self._refused(expr)
        for expr in [None, 5, b'0 3 * * *']:
            self._refused(expr, 'cron expression')

    def test_refuses_unknown_macros(self):
        self._refused('@reboot', 'Unknown schedule macro', '@daily')
        self._refused('@every 5m', 'Unknown schedule macro')

    def test_refuses_out_of_range(self):
        for expr, field in [('61 * * * *', 'Minute 61'),
                            ('60 * * * *', 'Minute 60'),
                            ('0 24 * * *', 'Hour 24'),
                            ('0 0 0 * *', 'Day-of-month 0'),
                            ('0 0 32 * *', 'Day-of-month 32'),
                            ('0 0 * 0 *', 'Month 0'),
                            ('0 0 * 13 *', 'Month 13'),
                            ('0 0 * * 8', 'Day-of-week 8'),
                            ('0-60 * * * *', 'Minute 60')]:
            self._refused(expr, field, 'out of range')
        self._refused('*/0 * * * *', 'Step 0 out of range')
        self._refused('*/61 * * * *', 'Step 61 out of range')

    def test_refuses_non_standard_extensions(self):
        # croniter accepts all of these; a crontab would not.
        for expr in ['0 3 L * *', '0 3 15W * *', '0 3 * * 5#2',
                     '0 3 * * 5L', '0 3 ? * *', 'H 3 * * *',
                     'H(0-29) 3 * * *', '0 3 * * l']:
            self._refused(expr, 'schedule')

    def test_refuses_ambiguous_step_and_backward_ranges(self):
        self._refused('5/15 * * * *', 'Step without a range', '5-59/15')
        self._refused('0 22-2 * * *', 'runs backwards')
        self._refused('0 0 * * fri-mon', 'runs backwards')

    def test_refuses_dates_that_never_happen(self):
        self._refused('0 0 30 2 *', 'never runs')
        self._refused('0 0 31 4,6,9,11 *', 'never runs')
        # Each of these runs on some date.
        self.assertEqual('0 0 31 2,3 *', schedule.validate('0 0 31 2,3 *'))
        # Two restricted day fields match either: every Monday in February.
        self.assertEqual('0 0 30 2 mon', schedule.validate('0 0 30 2 mon'))

    def test_describe(self):
        self.assertEqual('at 02:30 on day-of-week mon-fri',
                         schedule.describe('30 2 * * MON-FRI'))
        self.assertEqual('at 00:00 on day-of-month 13 or day-of-week fri',
                         schedule.describe('0 0 13 * fri'))
        self.assertEqual('minute */15 of every hour',
                         schedule.describe('*/15 * * * *'))
        self.assertEqual('at 00:00 on day-of-month 1 in month 1',
                         schedule.describe('@yearly'))
        self.assertRaises(exception.InvalidInput, schedule.describe, 'x')


class NextRunTest(base.TestCase):

    def test_strictly_after(self):
        self.assertEqual(D(2025, 6, 2, 3, 0),
                         schedule.next_run('0 3 * * *', D(2025, 6, 1, 3, 0)))
        self.assertEqual(D(2025, 6, 1, 3, 0),
                         schedule.next_run('0 3 * * *',
                                           D(2025, 6, 1, 2, 59, 59, 999)))
        self.assertEqual(D(2025, 6, 1, 3, 1),
                         schedule.next_run('* * * * *',
                                           D(2025, 6, 1, 3, 0, 0, 1)))

    def test_result_is_naive_utc_and_aware_input_is_converted(self):
        result = schedule.next_run('0 3 * * *', D(2025, 6, 1, 12, 0))
        self.assertIsNone(result.tzinfo)
        aware = D(2025, 6, 1, 14, 0, tzinfo=zoneinfo.ZoneInfo('Europe/Paris'))
        self.assertEqual(result, schedule.next_run('0 3 * * *', aware))

    def test_fixed_offset_zone(self):
        # Midnight in India (+05:30) is 18:30 UTC the day before.
        self.assertEqual(D(2025, 6, 1, 18, 30),
                         schedule.next_run('@daily', D(2025, 6, 1, 12, 0),
                                           'Asia/Kolkata'))

    def test_unknown_time_zone_refused(self):
        for tz in ['Mars/Olympus', '../../etc/passwd', '', None]:
            err = self.assertRaises(exception.InvalidInput,
                                    schedule.next_run, '0 3 * * *',
                                    D(2025, 1, 1), tz)
            self.assertIn('Unknown time zone', err.message)

    def test_invalid_expression_refused(self):
        self.assertRaises(exception.InvalidInput, schedule.next_run,
                          '0 0 3 * * *', D(2025, 1, 1))

    def test_31st_only_in_long_months(self):
        got = runs('0 3 31 * *', D(2025, 1, 1), D(2025, 12, 31, 23))
        self.assertEqual([D(2025, m, 31, 3) for m in (1, 3, 5, 7, 8, 10, 12)],
                         got)

    def test_29_february_waits_for_a_leap_year(self):
        self.assertEqual(D(2028, 2, 29),
                         schedule.next_run('0 0 29 2 *', D(2025, 3, 1)))
        self.assertEqual(D(2032, 2, 29),
                         schedule.next_run('0 0 29 2 *', D(2028, 2, 29)))
        # 2100 is not a leap year.
        self.assertEqual(D(2104, 2, 29),
                         schedule.next_run('0 0 29 2 *', D(2096, 3, 1)))

    def test_weekday_names(self):
        friday = D(2025, 6, 6, 10, 0)
        self.assertEqual(4, friday.weekday())
        self.assertEqual(D(2025, 6, 9, 9, 0),
                         schedule.next_run('0 9 * * mon-fri', friday))
        self.assertEqual(D(2025, 6, 7, 9, 0),
                         schedule.next_run('0 9 * * sat,sun', friday))
        # Sunday is sun, 0 and 7.
        for dow in ('sun', 'SUN', '0', '7'):
            self.assertEqual(D(2025, 6, 8, 9, 0),
                             schedule.next_run('0 9 * * ' + dow, friday))
        self.assertEqual(
            [D(2025, 6, 9, 9), D(2025, 6, 11, 9), D(2025, 6, 16, 9)],
            runs('0 9 * * mon,wed', friday, D(2025, 6, 16, 12)))

    def test_month_names(self):
        self.assertEqual(D(2026, 1, 1, 0, 0),
                         schedule.next_run('0 0 1 jan *', D(2025, 6, 1)))
        self.assertEqual(D(2025, 7, 1, 0, 0),
                         schedule.next_run('0 0 1 jan,jul *', D(2025, 6, 1)))

    def test_day_fields_or_and_and_like_cron(self):
        # Both restricted: the 13th OR a Friday.
        got = runs('0 0 13 * fri', D(2025, 6, 1), D(2025, 6, 30))
        self.assertEqual([D(2025, 6, d) for d in (6, 13, 20, 27)], got)
        got = runs('0 0 12 * fri', D(2025, 6, 1), D(2025, 6, 30))
        self.assertEqual([D(2025, 6, d) for d in (6, 12, 13, 20, 27)], got)
        # A field starting with '*' makes it AND (Vixie cron): odd days
        # that are Mondays.
        got = runs('0 0 */2 * mon', D(2025, 6, 1), D(2025, 6, 30))
        self.assertEqual([D(2025, 6, 9), D(2025, 6, 23)], got)

    def test_agrees_with_croniter_in_utc(self):
        # Away from DST both must read standard cron the same way.
        start = D(2024, 1, 30, 22, 17)
        for expr in ['*/7 * * * *', '5 4 * * sun', '0 0,12 1 */2 *',
                     '15 10 * * mon-fri', '0 3 31 * *', '0 0 29 2 *',
                     '23 0-20/2 * * *', '0 9 1-7 * 1', '30 1 15 jan,jun *',
                     '@weekly', '@monthly', '@yearly', '@hourly']:
            expected = croniter.croniter(expr, start)
            moment = start
            for _ in range(40):
                moment = schedule.next_run(expr, moment)
                self.assertEqual(expected.get_next(D), moment, expr)


class DaylightSavingTest(base.TestCase):
    """cronie's behaviour across the 2025 daylight-saving changes.

    Berlin changes on 30 March and 26 October at 01:00 UTC, New York on
    9 March at 07:00 UTC and 2 November at 06:00 UTC.
    """

    BERLIN = 'Europe/Berlin'
    NEW_YORK = 'America/New_York'

    def test_berlin_spring_forward_fixed_job_runs_after_gap(self):
        # 02:30 does not exist on 30 March: run once at 03:00 CEST.
        got = runs('30 2 * * *', D(2025, 3, 28, 12), D(2025, 4, 1, 12),
                   self.BERLIN)
        self.assertEqual([D(2025, 3, 29, 1, 30),   # 02:30 CET
                          D(2025, 3, 30, 1, 0),    # 03:00 CEST
                          D(2025, 3, 31, 0, 30),   # 02:30 CEST
                          D(2025, 4, 1, 0, 30)], got)
        self.assertEqual(D(2025, 3, 30, 3, 0), wall(got[1], self.BERLIN))

    def test_berlin_fall_back_fixed_job_runs_once(self):
        # 02:30 happens twice on 26 October: run at the first only.
        got = runs('30 2 * * *', D(2025, 10, 24, 12), D(2025, 10, 28, 12),
                   self.BERLIN)
        self.assertEqual([D(2025, 10, 25, 0, 30),  # 02:30 CEST
                          D(2025, 10, 26, 0, 30),  # 02:30 CEST, first
                          D(2025, 10, 27, 1, 30),  # 02:30 CET
                          D(2025, 10, 28, 1, 30)], got)
        # Asking again from the first run must not give the second 02:30.
        self.assertEqual(D(2025, 10, 27, 1, 30),
                         schedule.next_run('30 2 * * *',
                                           D(2025, 10, 26, 0, 30),
                                           self.BERLIN))

    def test_berlin_fixed_hour_range(self):
        # 02:00 is skipped and caught up at 03:00, which is also a run of
        # its own: one run at that instant, not two.
        got = runs('0 1-3 * * *', D(2025, 3, 29, 22), D(2025, 3, 30, 12),
                   self.BERLIN)
        self.assertEqual([D(2025, 3, 30, 0, 0), D(2025, 3, 30, 1, 0)], got)
        # 02:00 twice: only the first; 01:00 and 03:00 as usual.
        got = runs('0 1-3 * * *', D(2025, 10, 25, 22), D(2025, 10, 26, 12),
                   self.BERLIN)
        self.assertEqual([D(2025, 10, 25, 23, 0), D(2025, 10, 26, 0, 0),
                          D(2025, 10, 26, 2, 0)], got)

    def test_new_york_spring_forward_fixed_job_runs_after_gap(self):
        got = runs('30 2 * * *', D(2025, 3, 7, 12), D(2025, 3, 10, 12),
                   self.NEW_YORK)
        self.assertEqual([D(2025, 3, 8, 7, 30),    # 02:30 EST
                          D(2025, 3, 9, 7, 0),     # 03:00 EDT
                          D(2025, 3, 10, 6, 30)],  # 02:30 EDT
                         got)

    def test_new_york_fall_back_fixed_job_runs_once(self):
        got = runs('30 1 * * *', D(2025, 10, 31, 12), D(2025, 11, 3, 12),
                   self.NEW_YORK)
        self.assertEqual([D(2025, 11, 1, 5, 30),   # 01:30 EDT
                          D(2025, 11, 2, 5, 30),   # 01:30 EDT, first
                          D(2025, 11, 3, 6, 30)],  # 01:30 EST
                         got)

    def _assert_every(self, expr, step, start, until, tz):
        got = runs(expr, start, until, tz)
        self.assertEqual(int((until - start) / step), len(got))
        gaps = {b - a for a, b in zip(got, got[1:])}
        self.assertEqual({step}, gaps, '%s in %s' % (expr, tz))
        return got

    def test_every_15_minutes_through_transitions(self):
        step = 15 * MINUTE
        for tz, spring, fall in [
                (self.BERLIN, D(2025, 3, 30, 1), D(2025, 10, 26, 1)),
                (self.NEW_YORK, D(2025, 3, 9, 7), D(2025, 11, 2, 6))]:
            for change in spring, fall:
                got = self._assert_every('*/15 * * * *', step,
                                         change - 3 * HOUR,
                                         change + 3 * HOUR, tz)
                self.assertIn(change, got)
        # In the repeated hour each wall time runs twice, an hour apart.
        got = runs('*/15 * * * *', D(2025, 10, 26, 0), D(2025, 10, 26, 2),
                   self.BERLIN)
        walls = [wall(m, self.BERLIN) for m in got]
        self.assertEqual(2, walls.count(D(2025, 10, 26, 2, 15)))

    def test_every_15_minutes_in_an_hour_range_through_transitions(self):
        # The minute field starts with '*': a wildcard job, real time.
        got = runs('*/15 1-3 * * *', D(2025, 10, 25, 22),
                   D(2025, 10, 26, 12), self.BERLIN)
        # 01:00-01:45 CEST, 02:00-02:45 CEST, 02:00-02:45 CET, 03:00-03:45.
        self.assertEqual(16, len(got))
        self.assertEqual({15 * MINUTE},
                         {b - a for a, b in zip(got, got[1:])})
        got = runs('*/15 1-3 * * *', D(2025, 3, 29, 22), D(2025, 3, 30, 12),
                   self.BERLIN)
        # 02:xx does not exist and is not caught up.
        self.assertEqual([D(2025, 3, 30, 0, m) for m in (0, 15, 30, 45)] +
                         [D(2025, 3, 30, 1, m) for m in (0, 15, 30, 45)],
                         got)

    def test_hourly_keeps_real_hours(self):
        for tz, change in [(self.BERLIN, D(2025, 3, 30, 1)),
                           (self.BERLIN, D(2025, 10, 26, 1)),
                           (self.NEW_YORK, D(2025, 3, 9, 7)),
                           (self.NEW_YORK, D(2025, 11, 2, 6))]:
            for expr in ('30 * * * *', '@hourly'):
                self._assert_every(expr, HOUR, change - 4 * HOUR,
                                   change + 4 * HOUR, tz)

    def test_daily_job_runs_every_day_of_a_year(self):
        for tz, hour in [(self.BERLIN, 2), (self.NEW_YORK, 2),
                         (self.NEW_YORK, 1)]:
            expr = '30 %d * * *' % hour
            got = runs(expr, D(2025, 1, 1, 12), D(2026, 1, 1, 12), tz)
            self.assertEqual(365, len(got), tz)
            days = [wall(m, tz).date() for m in got]
            self.assertEqual(365, len(set(days)), tz)
            odd = {wall(m, tz) for m in got
                   if wall(m, tz).time() != datetime.time(hour, 30)}
            if hour == 2:
                # Only the spring-forward day, caught up at 03:00.
                self.assertEqual(1, len(odd), tz)
                self.assertEqual(datetime.time(3, 0), odd.pop().time())
            else:
                self.assertEqual(set(), odd)

    def _simulate_cron(self, expr, tz, start, end):
        """Runs a cron daemon would make, minute by minute, in UTC.

        This follows the main loop of Vixie cron/cronie: on a jump forward
        fixed-time jobs are caught up for every skipped wall minute and
        wildcard jobs run for the current one; on a jump back only
        wildcard jobs run until the wall clock passes where it had been.
        """
        zone = zoneinfo.ZoneInfo(tz)
        fields = schedule.MACROS.get(expr, expr).split()
        wildcard = fields[0].startswith('*') or fields[1].startswith('*')

        def local(moment):
            return moment.replace(tzinfo=datetime.timezone.utc).astimezone(
                zone).replace(tzinfo=None)

        # The wall times the expression matches, as croniter reads it.
        walls = set()
        it = croniter.croniter(expr, local(start) - DAY)
        while not walls or max(walls) < local(end) + DAY:
            walls.add(it.get_next(D))
        match = walls.__contains__

        out = []
        moment, virtual = start, local(start)
        while moment < end:
            moment += MINUTE
            now = local(moment)
            ran = False
            if now - virtual == MINUTE:
                ran = match(now)
            elif now > virtual:
                while virtual < now:
                    virtual += MINUTE
                    ran = ran or (not wildcard and match(virtual))
                ran = ran or (wildcard and match(now))
            else:
                ran = wildcard and match(now)
            virtual = max(virtual, now)
            if ran:
                out.append(moment)
        return out

    def test_matches_a_simulated_cron_daemon(self):
        for tz, change in [(self.BERLIN, D(2025, 3, 30, 1)),
                           (self.BERLIN, D(2025, 10, 26, 1)),
                           (self.NEW_YORK, D(2025, 3, 9, 7)),
                           (self.NEW_YORK, D(2025, 11, 2, 6)),
                           # Midnight does not exist there that day.
                           ('America/Sao_Paulo', D(2018, 11, 4, 3))]:
            start, end = change - 4 * HOUR, change + 4 * HOUR
            for expr in ['30 2 * * *', '0 1-3 * * *', '45 0,1,2,3 * * *',
                         '0,20,40 2 * * *', '*/10 1-3 * * *', '30 * * * *',
                         '* 2 * * *', '@hourly', '@daily', '30 23 * * *']:
                self.assertEqual(self._simulate_cron(expr, tz, start, end),
                                 runs(expr, start, end, tz),
                                 '%s in %s at %s' % (expr, tz, change))

    def test_half_hour_transition(self):
        # Lord Howe Island moves from +10:30 to +11 at 02:00 local on
        # 5 October 2025: 02:15 does not exist and runs at 02:30.
        tz = 'Australia/Lord_Howe'
        got = schedule.next_run('15 2 * * *', D(2025, 10, 4, 12), tz)
        self.assertEqual(D(2025, 10, 4, 15, 30), got)
        self.assertEqual(D(2025, 10, 5, 2, 30), wall(got, tz))

    def test_after_inside_the_repeated_hour(self):
        # 00:50 UTC on 26 October is 02:50 CEST; the next quarter hour
        # is 02:00 CET, earlier on the wall clock but later in real time.
        self.assertEqual(D(2025, 10, 26, 1, 0),
                         schedule.next_run('*/15 * * * *',
                                           D(2025, 10, 26, 0, 50),
                                           self.BERLIN))
        # A fixed job already past for the day waits for the next day.
        self.assertEqual(D(2025, 10, 27, 1, 15),
                         schedule.next_run('15 2 * * *',
                                           D(2025, 10, 26, 0, 50),
                                           self.BERLIN))
