"""Cron schedules for periodic backups, evaluated in a local time zone.

Only standard five-field cron syntax is accepted: numbers, ``*``, ranges
``a-b``, steps ``*/n`` and ``a-b/n``, lists ``a,b``, the month and weekday
names (``jan``, ``mon``...) and the macros ``@hourly``, ``@daily``
(``@midnight``), ``@weekly``, ``@monthly`` and ``@yearly``
(``@annually``). Extensions some libraries accept (seconds or year fields,
``L``, ``W``, ``#``, ``?``, Jenkins-style ``H``, ``a/n``, wrap-around ranges)
are refused: an expression stored here must mean the same thing it means in
a crontab, and ``L`` ("last day of the month") in particular has no cron
equivalent. A backup on the last day of every month is better written as
one early on the 1st.

croniter is deliberately not used to evaluate expressions. Its parser
accepts all the extensions above, reads ``*/2`` in day-of-month or
day-of-week differently from cron, and its behaviour has changed between
the versions our requirements allow. The evaluation here is small and
follows Vixie cron/cronie exactly, including its daylight-saving rules.

Times handed in and returned are naive UTC, as the catalogue stores them;
the expression itself is matched against the wall clock of an IANA time
zone. Across a daylight-saving change this module does what cronie does:

* A *fixed-time* job, one whose minute and hour fields both start with
  something other than ``*`` (``30 2 * * *``, ``0 1-4 * * *``, ``@daily``),
  runs once a day at its wall-clock time. If that time is skipped by a
  spring-forward change it runs right after the gap (02:30 on the skipped
  hour runs at 03:00); if it occurs twice on a fall-back change it runs only
  at the first occurrence.
* A *wildcard* job, one whose minute or hour field starts with ``*``
  (``*/15 * * * *``, ``30 * * * *``, ``@hourly``), follows real time: the
  runs falling in a skipped hour do not happen and the runs in a repeated
  hour happen twice, so ``*/15`` keeps running every 15 real minutes.
"""

import calendar
import dataclasses
import datetime
import re
import zoneinfo

from osbackup import exception

UTC = datetime.timezone.utc

MACROS = {
    '@yearly': '0 0 1 1 *',
    '@annually': '0 0 1 1 *',
    '@monthly': '0 0 1 * *',
    '@weekly': '0 0 * * 0',
    '@daily': '0 0 * * *',
    '@midnight': '0 0 * * *',
    '@hourly': '0 * * * *',
}

_MONTHS = {name: n for n, name in enumerate(
    ('jan', 'feb', 'mar', 'apr', 'may', 'jun',
     'jul', 'aug', 'sep', 'oct', 'nov', 'dec'), start=1)}
_WEEKDAYS = {name: n for n, name in enumerate(
    ('sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'))}


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict


_FIELDS = (
    _Field('minute', 0, 59, {}),
    _Field('hour', 0, 23, {}),
    _Field('day-of-month', 1, 31, {}),
    _Field('month', 1, 12, _MONTHS),
    # 7 is Sunday as well as 0, as in every cron.
    _Field('day-of-week', 0, 7, _WEEKDAYS),
)

_ITEM = re.compile(r'^(?:(?P<star>\*)|(?P<first>[a-z0-9]+)'
                   r'(?:-(?P<last>[a-z0-9]+))?)(?:/(?P<step>[0-9]+))?$')

# Every valid day of month recurs within 8 years (29 February) and on each
# weekday within 40 (29 February on a given weekday, across 2100 which is
# not a leap year); past this a search has a bug, it must not spin forever.
_MAX_YEARS = 50

# How far around an instant to look for the zone's offsets: further than
# any two consecutive transitions are apart, nearer than a day's matches.
_PROBES = tuple(datetime.timedelta(hours=6 * k) for k in range(-8, 9))


@dataclasses.dataclass(frozen=True)
class _Spec:
    minutes: tuple
    hours: tuple
    days: frozenset
    months: frozenset
    weekdays: frozenset
    # Vixie cron's DOM_STAR/DOW_STAR: a day field starting with '*'. When
    # either is set a day must match both fields, otherwise either.
    dom_star: bool
    dow_star: bool
    # Vixie cron's MIN_STAR/HR_STAR, which decide the DST behaviour.
    wildcard: bool

    def day_matches(self, day: datetime.date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        # date.weekday() counts from Monday, cron from Sunday.
        dow = (day.weekday() + 1) % 7 in self.weekdays
        if self.dom_star or self.dow_star:
            return dom and dow
        return dom or dow

    def walk(self, start: datetime.datetime):
        """Yield the matching wall-clock times at or after ``start``."""
        day = start.date()
        end = day.year + _MAX_YEARS
        while day.year <= end:
            if day.month not in self.months:
                # Jump to the next month rather than test each day of it.
                day = (day.replace(day=1) + datetime.timedelta(days=32)
                       ).replace(day=1)
                continue
            if self.day_matches(day):
                for hour in self.hours:
                    for minute in self.minutes:
                        wall = datetime.datetime.combine(
                            day, datetime.time(hour, minute))
                        if wall >= start:
                            yield wall
            day += datetime.timedelta(days=1)
        # validate() refuses expressions that never match, so this is a bug.
        raise exception.InvalidInput(
            'Schedule does not run in the %d years after %s'
            % (_MAX_YEARS, start))


def _number(field: _Field, token: str, expr: str) -> int:
    if token.isdigit():
        value = int(token)
    elif token in field.names:
        value = field.names[token]
    else:
        hint = (' (use numbers or %s)' % ', '.join(field.names)
                if field.names else '')
        raise exception.InvalidInput(
            'Invalid %s %r in schedule %r%s' % (field.name, token, expr, hint))
    if not field.low <= value <= field.high:
        raise exception.InvalidInput(
            '%s %d out of range %d-%d in schedule %r'
            % (field.name.capitalize(), value, field.low, field.high, expr))
    return value


def _parse_field(field: _Field, text: str, expr: str) -> set:
    values = set()
    for item in text.split(','):
        match = _ITEM.match(item)
        if not match:
            raise exception.InvalidInput(
                'Invalid %s %r in schedule %r: expected *, a number, a '
                'range a-b, a step */n or a-b/n, or a list of those'
                % (field.name, item, expr))
        step = match.group('step')
        if match.group('star'):
            first, last = field.low, field.high
        else:
            first = _number(field, match.group('first'), expr)
            last = first
            if match.group('last') is not None:
                last = _number(field, match.group('last'), expr)
                if last < first:
                    raise exception.InvalidInput(
                        'Range %s in the %s of schedule %r runs backwards'
                        % (item, field.name, expr))
            elif step is not None:
                # Crons disagree on what "5/15" means; make it explicit.
                raise exception.InvalidInput(
                    'Step without a range %r in the %s of schedule %r; '
                    'write %s-%d/%s' % (item, field.name, expr,
                                        match.group('first'), field.high,
                                        step))
        increment = 1
        if step is not None:
            increment = int(step)
            if not 1 <= increment <= field.high - field.low + 1:
                raise exception.InvalidInput(
                    'Step %s out of range 1-%d in the %s of schedule %r'
                    % (step, field.high - field.low + 1, field.name, expr))
        values.update(range(first, last + 1, increment))
    return values


def _split(expr: str) -> tuple[str, list]:
    if not isinstance(expr, str):
        raise exception.InvalidInput(
            'A schedule must be a cron expression, not %r' % (expr,))
    normal = ' '.join(expr.lower().split())
    if normal.startswith('@'):
        if normal not in MACROS:
            raise exception.InvalidInput(
                'Unknown schedule macro %r (known: %s)'
                % (expr, ', '.join(sorted(MACROS))))
        return normal, MACROS[normal].split()
    fields = normal.split()
    if len(fields) != 5:
        raise exception.InvalidInput(
            'Schedule %r has %d fields; a cron expression has exactly 5 '
            '(minute hour day-of-month month day-of-week), seconds and '
            'years are not supported' % (expr, len(fields)))
    return normal, fields


def _parse(expr: str) -> tuple[str, _Spec]:
    normal, fields = _split(expr)
    minutes, hours, days, months, weekdays = (
        _parse_field(f, text, expr) for f, text in zip(_FIELDS, fields))
    if 7 in weekdays:
        weekdays = (weekdays - {7}) | {0}
    spec = _Spec(minutes=tuple(sorted(minutes)), hours=tuple(sorted(hours)),
                 days=frozenset(days), months=frozenset(months),
                 weekdays=frozenset(weekdays),
                 dom_star=fields[2].startswith('*'),
                 dow_star=fields[4].startswith('*'),
                 wildcard=(fields[0].startswith('*') or
                           fields[1].startswith('*')))
    # Cron silently accepts "0 0 30 2 *" and never runs it; a backup that
    # never happens must be caught now, not noticed after a disaster. With
    # both day fields restricted the weekdays alone always match; otherwise
    # every valid date falls on each weekday some year.
    if not spec.dow_star or spec.dom_star:
        return normal, spec
    # 2000 is a leap year, so 29 February counts as a date.
    if not any(day <= calendar.monthrange(2000, month)[1]
               for month in spec.months for day in spec.days):
        raise exception.InvalidInput(
            'Schedule %r never runs: no month it names has the days it '
            'names' % expr)
    return normal, spec


def validate(expr: str) -> str:
    """Check a cron expression and return it normalised.

    The normal form is lower case with single spaces; macros stay macros.
    Raises InvalidInput saying what is wrong with anything else.
    """
    return _parse(expr)[0]


def _zone(tz: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise exception.InvalidInput('Unknown time zone %r' % (tz,))


def _to_utc(moment: datetime.datetime) -> datetime.datetime:
    """Naive UTC for a datetime, naive ones being UTC already."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _offset(zone: zoneinfo.ZoneInfo,
            moment: datetime.datetime) -> datetime.timedelta:
    return zone.utcoffset(moment.replace(tzinfo=UTC).astimezone(zone))


def _offsets(zone, moment):
    offsets = [_offset(zone, moment + probe) for probe in _PROBES]
    return min(offsets), max(offsets)


def _gap_end(zone, before, after):
    """First instant after a transition that lies between two instants."""
    # Transitions are not always on the hour (Lord Howe moves by 30
    # minutes), so find it by bisection, to the second.
    old = _offset(zone, before)
    while after - before > datetime.timedelta(seconds=1):
        middle = before + (after - before) / 2
        middle = middle.replace(microsecond=0)
        if _offset(zone, middle) == old:
            before = middle
        else:
            after = middle
    return after


def _wall(zone, instant):
    """Naive wall-clock time in a zone of a naive UTC instant."""
    return instant.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)


def _instants(zone, wall, wildcard):
    """UTC instants at which a job matching a wall-clock time runs."""
    first = _to_utc(wall.replace(tzinfo=zone, fold=0))
    second = _to_utc(wall.replace(tzinfo=zone, fold=1))
    if first == second:
        return [first]
    if _wall(zone, first) == wall:
        # The wall time happens twice (fall back). cronie runs wildcard
        # jobs in real time, hence twice, and fixed-time jobs once.
        return [first, second] if wildcard else [first]
    # The wall time does not exist (spring forward). For such a time,
    # fold=0 applies the offset from before the change and fold=1 the one
    # after, so the change lies between the two readings. cronie catches
    # fixed-time jobs up right after the gap and skips wildcard ones.
    if wildcard:
        return []
    return [_gap_end(zone, min(first, second), max(first, second))]


def next_run(expr: str, after: datetime.datetime,
             tz: str = 'UTC') -> datetime.datetime:
    """First run of a schedule strictly after ``after``, in naive UTC.

    The expression is matched against the wall clock of ``tz`` with the
    daylight-saving rules of cronie, described in the module docstring.
    """
    spec = _parse(expr)[1]
    zone = _zone(tz)
    after = _to_utc(after)
    # A wall time's instant is the wall time minus one of the zone's
    # offsets around it, so wall order and real order may disagree by up to
    # the difference between the offsets; scan wide enough to cover it.
    low, _ = _offsets(zone, after)
    best = horizon = None
    for wall in spec.walk(after + low):
        if horizon is not None and wall > horizon:
            break
        for instant in _instants(zone, wall, spec.wildcard):
            if instant > after and (best is None or instant < best):
                best = instant
                # No later wall time can map before best once it is past
                # best plus the largest offset around best.
                horizon = best + _offsets(zone, best)[1]
    return best


def describe(expr: str) -> str:
    """A plain-words reading of a schedule, for listings."""
    normal, fields = _split(validate(expr))
    minute, hour, dom, month, dow = fields
    if minute.isdigit() and hour.isdigit():
        text = 'at %02d:%02d' % (int(hour), int(minute))
    else:
        text = '%s of %s' % (
            'every minute' if minute == '*' else 'minute %s' % minute,
            'every hour' if hour == '*' else 'hour %s' % hour)
    days = []
    if dom != '*':
        days.append('day-of-month %s' % dom)
    if dow != '*':
        days.append('day-of-week %s' % dow)
    if days:
        # Vixie cron: two restricted day fields match either, else both.
        joiner = (' and ' if dom.startswith('*') or dow.startswith('*')
                  else ' or ')
        text += ' on ' + joiner.join(days)
    if month != '*':
        text += ' in month %s' % month
    return text
