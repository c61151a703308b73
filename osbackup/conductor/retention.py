"""Which backups a retention policy lets go.

Pure functions over catalogue records, no database: the conductor feeds
them every backup it knows and deletes what comes back. The rules follow
restic's ``forget``: a backup stays if any rule keeps it, and a calendar
bucket (day, ISO week, month) only uses up one of its N slots when it holds
a good backup. Ages are measured on the conductor's clock (``now``),
calendar buckets in the operator's time zone.

Whatever the rules say, some backups are never returned:

* operations still in progress (PENDING, RUNNING);
* backups dated after ``now``, since a skewed clock is no reason to delete;
* the backup holding the newest available artifact of each (host,
  service, name), so no service or database ever loses its last good copy.
"""

import dataclasses
import datetime
import zoneinfo

from osbackup import exception
from osbackup import states

UTC = datetime.timezone.utc

_BUCKETS = (
    ('keep_daily', 'day', 'days'),
    ('keep_weekly', 'week', 'weeks'),
    ('keep_monthly', 'month', 'months'),
)


@dataclasses.dataclass
class Rules:
    """A retention policy; a backup stays when any non-zero rule keeps it.

    ``keep_days``: everything created within that many days of now.
    ``keep_last``: the newest N good backups.
    ``keep_daily``/``keep_weekly``/``keep_monthly``: the newest good backup
    of each of the N most recent days/ISO weeks/months that have one.
    """

    keep_days: int = 0
    keep_last: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0

    def validate(self) -> None:
        """Raise InvalidInput unless this policy is usable."""
        names = [f.name for f in dataclasses.fields(self)]
        for name in names:
            value = getattr(self, name)
            # bool is an int, but "keep_last=True" is surely a mistake.
            if isinstance(value, bool) or not isinstance(value, int):
                raise exception.InvalidInput(
                    'Retention %s must be a whole number, not %r'
                    % (name, value))
            if value < 0:
                raise exception.InvalidInput(
                    'Retention %s must not be negative (got %d)'
                    % (name, value))
        if not any(getattr(self, name) for name in names):
            # An empty policy would delete every backup but the safety net.
            raise exception.InvalidInput(
                'a retention policy must keep something: set at least one '
                'of %s' % ', '.join(names))


def _utc(moment: datetime.datetime) -> datetime.datetime:
    """Naive UTC for a datetime, naive ones being UTC already."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _zone(tz: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise exception.InvalidInput('Unknown time zone %r' % (tz,))


def _newest_first(backup):
    # Ties on created_at go to the higher id, which was created later.
    return backup['_at'], backup['id']


def _protected(backups):
    """Ids of the backups holding the newest available copy of anything."""
    newest = {}
    settled = {}
    for backup in sorted(backups, key=_newest_first):
        for artifact in backup.get('artifacts') or ():
            if artifact.get('status') != states.AVAILABLE:
                continue
            key = (artifact['host'], artifact['service'], artifact['name'])
            newest[key] = backup['id']
            # An operation in progress may still be aborted and its
            # artifacts discarded, so its copy does not stand in for the
            # newest one from a finished backup: protect that one too.
            if backup['status'] not in states.TASK_ACTIVE:
                settled[key] = backup['id']
    return set(newest.values()) | set(settled.values())


def _plural(count, one, many):
    return '%d %s' % (count, one if count == 1 else many)


def _reason(backup, rules):
    if backup['status'] != states.SUCCEEDED:
        if rules.keep_days:
            return '%s and older than %s' % (
                backup['status'], _plural(rules.keep_days, 'day', 'days'))
        return ('%s, and only keep_days keeps backups that did not succeed'
                % backup['status'])
    missed = []
    if rules.keep_days:
        missed.append('older than %s'
                      % _plural(rules.keep_days, 'day', 'days'))
    if rules.keep_last:
        missed.append('not among the last %s'
                      % _plural(rules.keep_last, 'good backup',
                                'good backups'))
    for attr, one, many in _BUCKETS:
        count = getattr(rules, attr)
        if count:
            missed.append('not the newest of the last %s with a backup'
                          % _plural(count, one, many))
    if len(missed) == 1:
        return missed[0]
    return ', '.join(missed[:-1]) + ' and ' + missed[-1]


def expired(backups: list[dict], rules: Rules, now: datetime.datetime,
            tz: str = 'UTC') -> list[dict]:
    """Backups the policy does not keep, as ``{'id', 'reason'}`` by id.

    ``backups`` are catalogue records with ``id``, ``status``,
    ``created_at`` (naive UTC) and ``artifacts`` (each with ``host``,
    ``service``, ``name`` and ``status``). ``now`` is naive UTC; ``tz``
    is the time zone whose calendar days, weeks and months count.
    """
    rules.validate()
    zone = _zone(tz)
    now = _utc(now)
    backups = [dict(b, _at=_utc(b['created_at'])) for b in backups]
    keep = _protected(backups)

    # Backups "from the future" are kept outright; they must not also
    # take a keep_last or bucket slot from a real recent backup.
    for backup in backups:
        if backup['_at'] > now or backup['status'] in states.TASK_ACTIVE:
            keep.add(backup['id'])
    good = sorted((b for b in backups
                   if b['status'] == states.SUCCEEDED and b['_at'] <= now),
                  key=_newest_first, reverse=True)

    if rules.keep_days:
        cutoff = now - datetime.timedelta(days=rules.keep_days)
        keep.update(b['id'] for b in backups if b['_at'] >= cutoff)
    keep.update(b['id'] for b in good[:rules.keep_last])

    def local_day(backup):
        return backup['_at'].replace(tzinfo=UTC).astimezone(zone).date()

    bucket_of = {
        'keep_daily': local_day,
        'keep_weekly': lambda b: local_day(b).isocalendar()[:2],
        'keep_monthly': lambda b: (local_day(b).year, local_day(b).month),
    }
    for attr, _, _ in _BUCKETS:
        slots = getattr(rules, attr)
        seen = set()
        # Newest first, so the first backup met in a bucket is its newest
        # and a bucket without a good backup never uses up a slot.
        for backup in good:
            if len(seen) >= slots:
                break
            bucket = bucket_of[attr](backup)
            if bucket not in seen:
                seen.add(bucket)
                keep.add(backup['id'])

    return sorted(({'id': b['id'], 'reason': _reason(b, rules)}
                   for b in backups if b['id'] not in keep),
                  key=lambda entry: entry['id'])
