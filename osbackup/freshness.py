"""Is every service backed up recently enough? The rule of ``backup check``.

Each (host, service) row of ``Catalogue.backup_status`` gets a state from
the age of its newest successful backup, the way Nagios and Icinga checks
do: OK, WARNING past the warning age or when the newest attempt failed,
CRITICAL past the critical age or never backed up; a verification that
found corruption, or none within ``verified_within``, counts too. The
worst state is the check's, with one summary line and performance data.
"""

import dataclasses
import datetime
import re

from osbackup import exception

OK, WARNING, CRITICAL, UNKNOWN = 'OK', 'WARNING', 'CRITICAL', 'UNKNOWN'
#: Nagios plugin exit codes.
EXIT_CODES = {OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3}
_RANK = {OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3}

_UNITS = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}
_DURATION = re.compile(r'(\d+(?:\.\d+)?)([smhdw])')


def parse_duration(text: str) -> float:
    """Seconds in ``26h``, ``3d``, ``1d12h``, ``90m`` or plain seconds."""
    value = str(text).strip().lower()
    if re.fullmatch(r'\d+(?:\.\d+)?', value):
        return float(value)
    parts = _DURATION.findall(value)
    if not value or not parts or ''.join(
            n + u for n, u in parts) != value:
        raise exception.InvalidInput(
            'Invalid duration %r: use a number with s, m, h, d or w, e.g. '
            '26h, 3d or 1d12h' % text)
    return sum(float(n) * _UNITS[u] for n, u in parts)


def human_age(seconds: float | None) -> str:
    """``3d2h``, ``26h``, ``45m``, ``never``: ages for the summary line."""
    if seconds is None:
        return 'never'
    seconds = int(seconds)
    if seconds >= 2 * 86400:
        days, rest = divmod(seconds, 86400)
        return '%dd%dh' % (days, rest // 3600) if rest >= 3600 \
            else '%dd' % days
    if seconds >= 3600:
        return '%dh' % (seconds // 3600)
    if seconds >= 60:
        return '%dm' % (seconds // 60)
    return '%ds' % seconds


@dataclasses.dataclass
class Thresholds:
    """Ages in seconds; ``verified_within`` None means not checked."""

    warning: float
    critical: float
    verified_within: float | None = None

    def __post_init__(self):
        if self.warning > self.critical:
            raise exception.InvalidInput(
                'The warning age (%s) must not exceed the critical age (%s)'
                % (human_age(self.warning), human_age(self.critical)))


@dataclasses.dataclass
class Report:
    """The outcome of one check: its state, items and Nagios output."""

    state: str
    items: list
    summary: str
    perfdata: str

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.state]

    def line(self) -> str:
        return 'OSBACKUP %s - %s | %s' % (self.state, self.summary,
                                          self.perfdata)


def _age(now, when) -> float | None:
    if when is None:
        return None
    return max(0.0, (now - when).total_seconds())


def judge(row: dict, now: datetime.datetime, limits: Thresholds) -> dict:
    """The state of one (host, service) and why."""
    age = _age(now, row.get('last_success'))
    reasons = []
    state = OK
    if age is None:
        state = CRITICAL
        reasons.append('never backed up')
    elif age > limits.critical:
        state = CRITICAL
        reasons.append('last backup %s ago' % human_age(age))
    elif age > limits.warning:
        state = WARNING
        reasons.append('last backup %s ago' % human_age(age))
    if row.get('last_result') == 'FAILED':
        state = _worst(state, WARNING)
        reasons.append('last attempt failed')
    lag = row.get('archive_lag_limit')
    if lag and age is not None and lag < age <= limits.warning:
        state = _worst(state, WARNING)
        reasons.append('binlog archive lags: last shipped %s ago, expected '
                       'within %s' % (human_age(age), human_age(lag)))
    if row.get('archive_break'):
        state = _worst(state, WARNING)
        reasons.append('break in the binlog chain and no backup since: %s'
                       % row['archive_break'])
    missing = row.get('secrets_missing') or []
    if missing:
        # A secret that cannot be recreated and is in no backup: the
        # service's data is lost with the host.
        critical = [m['path'] for m in missing if m.get('critical')]
        state = _worst(state, CRITICAL if critical else WARNING)
        reasons.append('newest backup lacks secret(s) %s' % ', '.join(
            m['path'] + (' (critical)' if m.get('critical') else '')
            for m in missing))
    if row.get('last_verify_result') == 'CORRUPT':
        state = _worst(state, CRITICAL)
        reasons.append('last verify found corruption')
    elif limits.verified_within is not None:
        verified = _age(now, row.get('last_verify'))
        if verified is None or verified > limits.verified_within:
            state = _worst(state, WARNING)
            reasons.append('not verified within %s'
                           % human_age(limits.verified_within))
    return {'host': row['host'], 'service': row['service'],
            'state': state, 'age': age,
            'last_success': row.get('last_success'),
            'last_result': row.get('last_result'),
            'last_verify': row.get('last_verify'),
            'last_verify_result': row.get('last_verify_result'),
            'reasons': reasons}


def _worst(a: str, b: str) -> str:
    return a if _RANK[a] >= _RANK[b] else b


def evaluate(rows: list, now: datetime.datetime, limits: Thresholds,
             hosts=(), services=()) -> Report:
    """Judge every row; each of ``hosts`` and ``services`` must appear."""
    items = [judge(row, now, limits) for row in rows]
    missing = [h for h in hosts if h not in {i['host'] for i in items}] + \
        [s for s in services if s not in {i['service'] for i in items}]
    if not items:
        what = ', '.join(missing) if missing else 'anything'
        return Report(UNKNOWN, [], 'no backup of %s in the catalogue' % what,
                      "'services'=0")
    state = OK
    for item in items:
        state = _worst(state, item['state'])
    if missing:
        state = _worst(state, CRITICAL)
    bad = [i for i in items if i['state'] != OK]
    counts = {s: sum(1 for i in items if i['state'] == s)
              for s in (OK, WARNING, CRITICAL)}
    if bad or missing:
        # Worst and oldest first: the line is cut in alert e-mails.
        bad.sort(key=lambda i: (-_RANK[i['state']], -(i['age'] or 1e18)))
        named = ['%s/%s %s' % (i['host'], i['service'],
                               ', '.join(i['reasons'])) for i in bad[:10]]
        if len(bad) > 10:
            named.append('and %d more' % (len(bad) - 10))
        named += ['%s: no backup found' % m for m in missing]
        summary = '%d of %d not fresh: %s' % (len(bad) + len(missing),
                                              len(items) + len(missing),
                                              '; '.join(named))
    else:
        oldest = max((i['age'] for i in items), default=0)
        summary = 'all %d backed up within %s (oldest %s)' % (
            len(items), human_age(limits.warning), human_age(oldest))
    known = [i['age'] for i in items if i['age'] is not None]
    perfdata = ("'ok'=%d 'warning'=%d 'critical'=%d 'oldest_age'=%ds;%d;%d"
                % (counts[OK], counts[WARNING], counts[CRITICAL],
                   max(known, default=0), limits.warning, limits.critical))
    return Report(state, items, summary, perfdata)
